/**
 * Output locations checked before any work starts: a command that would train for an hour and
 * then fail to write its model refuses at once instead, naming the path and what is wrong with
 * it ('BAD_OPTION', exit 2 from the CLI); and folders written whole (`writeFolder`).
 */
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  type Stats,
  statSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ParryError } from '../errors.js';

const bad = (message: string) => new ParryError('BAD_OPTION', message);

/** `stat` of `p`, or undefined when nothing is there; other failures name `p`. */
function probe(p: string, what: string): Stats | undefined {
  try {
    return statSync(p);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw bad(`${what} ${p}: a symbolic link loop`);
    if (code === 'ENOTDIR') throw bad(`${what} ${p}: a part of the path is a file, not a folder`);
    if (code === 'EACCES') throw bad(`${what} ${p}: permission denied`);
    throw bad(`${what} ${p}: ${code ?? (e as Error).message}`);
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The nearest folder at or above `p` that exists (`p` itself does not), checked to be one. */
function existingParent(p: string, what: string, target: string): string {
  let dir = path.dirname(path.resolve(p));
  for (;;) {
    const st = probe(dir, what);
    if (st !== undefined) {
      if (!st.isDirectory()) throw bad(`${what} ${target}: ${dir} is a file, not a folder`);
      return dir;
    }
    const up = path.dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}

/**
 * Throws unless `dir` is a writable folder or can be created as one. `what` names the option
 * in the message (`out`, `--save-examples`).
 */
export function checkOutputDir(dir: string, what: string): void {
  const st = probe(dir, what);
  if (st !== undefined) {
    if (!st.isDirectory()) throw bad(`${what} ${dir} exists and is not a folder`);
    if (!writable(dir)) throw bad(`${what} ${dir} is not writable`);
    return;
  }
  const parent = existingParent(dir, what, dir);
  if (!writable(parent)) throw bad(`${what} ${dir} cannot be created: ${parent} is not writable`);
}

/** Throws unless `file` can be written: not a folder, in a folder that exists or can be made. */
export function checkOutputFile(file: string, what: string): void {
  const st = probe(file, what);
  if (st?.isDirectory()) throw bad(`${what} ${file} is a folder, not a file`);
  checkOutputDir(path.dirname(path.resolve(file)), what);
}

/**
 * Writes a folder's files all at once: `fill` writes them into a fresh temporary folder beside
 * `dir`, which then becomes `dir` by one rename (when `dir` is absent or empty), so a crash
 * never leaves half of them. Into a folder that already holds files, the new files are moved in
 * one by one, `last` (e.g. model.json, which names the others) after the rest. The temporary
 * folder is removed if `fill` fails.
 */
export async function writeFolder(
  dir: string,
  fill: (temporary: string) => Promise<void>,
  last: readonly string[] = [],
): Promise<void> {
  const parent = path.dirname(path.resolve(dir));
  mkdirSync(parent, { recursive: true });
  const temporary = mkdtempSync(path.join(parent, `.${path.basename(dir)}.partial-`));
  try {
    await fill(temporary);
    const existing = probe(dir, 'out');
    if (existing === undefined || readdirSync(dir).length === 0) {
      if (existing !== undefined) rmdirSync(dir);
      renameSync(temporary, dir);
      return;
    }
    const names = readdirSync(temporary).sort(
      (a, b) =>
        Number(last.includes(a)) - Number(last.includes(b)) || last.indexOf(a) - last.indexOf(b),
    );
    for (const name of names) renameSync(path.join(temporary, name), path.join(dir, name));
  } finally {
    rmSync(temporary, { recursive: true, force: true });
  }
}

/** Writes `text` to `file` through a temporary file renamed over it: never half a file. */
export async function writeFileWhole(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.partial`;
  try {
    await writeFile(temporary, text);
    renameSync(temporary, file);
  } finally {
    rmSync(temporary, { force: true });
  }
}
