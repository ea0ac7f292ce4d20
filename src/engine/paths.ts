/** Where parry's own files are, whether it runs from src/ (vitest), dist/src/ or node_modules. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ParryError } from '../errors.js';

/**
 * The directory of parry's own package.json, found by walking up from this module: the same
 * answer from src/data (vitest), dist/src/data (after tsc) and node_modules/parry/dist/src/data.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && readPackageName(manifest) === 'parry') return dir;
    const parent = dirname(dir);
    if (parent === dir) {
      throw new ParryError(
        'INTERNAL',
        `packageRoot: no package.json named 'parry' above ${fileURLToPath(import.meta.url)}`,
      );
    }
    dir = parent;
  }
}

function readPackageName(manifest: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
  } catch {
    return undefined;
  }
}
