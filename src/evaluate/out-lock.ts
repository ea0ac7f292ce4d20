/**
 * One run per output folder: `OUT/.parry-lock` is created exclusively (so two runs started at the
 * same instant cannot both take it) and holds the owner's pid, host and start time. A lock whose
 * process is gone (killed, crashed) on this host is stale and taken over; a live one refuses the
 * second run, naming the first. The lock goes when the run ends, or when the process exits.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { ParryError } from '../errors.js';

export const LOCK_FILE = '.parry-lock';

interface Owner {
  pid: number;
  host: string;
  started: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

/** Takes the lock of `outDir` (which must exist); returns its release. */
export function lockOutDir(outDir: string): () => void {
  const file = path.join(outDir, LOCK_FILE);
  const me: Owner = { pid: process.pid, host: hostname(), started: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, JSON.stringify(me));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const owner = readOwner(file);
      const stale = owner !== undefined && owner.host === me.host && !alive(owner.pid);
      if (!stale) {
        const who =
          owner === undefined
            ? 'another run (its lock file is unreadable)'
            : `another run (pid ${owner.pid} on ${owner.host}, started ${owner.started})`;
        throw new ParryError(
          'BAD_OPTION',
          `evaluate: ${outDir} is in use by ${who}; wait for it, use another folder, or remove ${file} if that run is gone`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  const release = () => {
    process.off('exit', release);
    if (readOwner(file)?.pid === process.pid) rmSync(file, { force: true });
  };
  process.on('exit', release);
  return release;
}
