/** Where parry's own files are, whether it runs from src/ (vitest), dist/src/ or node_modules. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

/**
 * The compiled-JS URL of one of parry's modules, for code that a worker must import: a module
 * under src/ running from TypeScript (vitest) maps to its dist/ build; compiled URLs pass through.
 */
export function compiledModuleUrl(moduleUrl: string): string {
  const here = new URL(moduleUrl);
  if (!here.pathname.endsWith('.ts')) return here.href;
  const rel = relative(packageRoot(), fileURLToPath(here)).replace(/\.ts$/, '.js');
  const target = join(packageRoot(), 'dist', rel);
  if (!existsSync(target))
    throw new ParryError(
      'BAD_FILE',
      `compiledModuleUrl: ${target} not found; run \`npm run build\` first`,
    );
  return pathToFileURL(target).href;
}
