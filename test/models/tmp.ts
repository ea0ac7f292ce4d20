import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A fresh temporary directory per test file; `cleanup` removes it. */
export async function tempDir(prefix: string) {
  const root = await mkdtemp(path.join(os.tmpdir(), `parry-${prefix}-`));
  let n = 0;
  return {
    root,
    /** A new, not yet existing sub-directory. */
    next: () => path.join(root, `m${n++}`),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

/** The ParryError `fn` throws (or rejects with), for checking code and message. */
export async function caught(fn: () => unknown): Promise<{ code?: string; message: string }> {
  try {
    await fn();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  throw new Error('expected an error, got none');
}
