/** Running the compiled CLI (`npm run build` first) and checking its one-line bad-input errors. */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';

/** `parry ...args` on the wasm backend, from the package root. */
export function parry(...args: string[]) {
  const root = packageRoot();
  const r = spawnSync(process.execPath, [join(root, 'bin', 'parry.mjs'), ...args], {
    encoding: 'utf8',
    cwd: root,
    env: { ...process.env, PARRY_BACKEND: 'wasm' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Exit 2, nothing on stdout, one line on stderr matching `pattern`. */
export function expectBadInput(r: ReturnType<typeof parry>, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines.length, r.stderr).toBe(1);
  expect(lines[0]).toMatch(pattern);
}
