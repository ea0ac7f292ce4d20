/**
 * `parry` processes for the job-queue tests (the built CLI: `npm run build` first): workers and
 * coordinators started asynchronously, so a test can watch their stderr and kill them mid-run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../../src/engine/paths.js';

export interface ParryProcess {
  child: ChildProcess;
  /** stderr and stdout lines so far (progress bars' carriage returns split lines too). */
  lines: string[];
  stdout: () => string;
  /** Resolves with the first line matching `pattern` (already seen or to come). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

export function spawnParry(args: string[]): ParryProcess {
  const root = packageRoot();
  const child = spawn(process.execPath, [path.join(root, 'bin', 'parry.mjs'), ...args], {
    cwd: root,
    env: { ...process.env, PARRY_BACKEND: 'wasm', PARRY_ENGINE: 'auto' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  let out = '';
  let partial = '';
  const add = (chunk: string) => {
    partial += chunk;
    const parts = partial.split(/\r?\n|\r/);
    partial = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.filter((w) => w.pattern.test(line))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stderr!.setEncoding('utf8').on('data', add);
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return {
    child,
    lines,
    stdout: () => out,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no line matching ${pattern} in:\n${lines.join('\n')}`)),
          timeoutMs,
        );
        waiters.push({
          pattern,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then(() =>
          setTimeout(() => {
            clearTimeout(timer);
            reject(new Error(`exited before a line matching ${pattern}:\n${lines.join('\n')}`));
          }, 100),
        );
      });
    },
  };
}

/** `n` workers on `url`, each ready; `extra` options for all. */
export async function startWorkers(url: string, n: number, extra: string[] = []) {
  const workers = Array.from({ length: n }, () =>
    spawnParry(['worker', '--redis', url, '--verbose', ...extra]),
  );
  await Promise.all(workers.map((w) => w.waitFor(/^worker: ready/)));
  return workers;
}

/** Kills what is still running (SIGKILL, by pid) and waits for it. */
export async function killAll(procs: readonly ParryProcess[]): Promise<void> {
  for (const p of procs) {
    if (p.child.exitCode === null && p.child.signalCode === null)
      process.kill(p.child.pid!, 'SIGKILL');
  }
  await Promise.all(procs.map((p) => p.exited));
}

/** Job ids a worker finished (from its --verbose lines). */
export const doneIds = (p: ParryProcess): string[] =>
  p.lines.flatMap((l) => /^worker: done ([0-9a-f]{12}) /.exec(l)?.[1] ?? []);
