/**
 * `parry evaluate --queue` with `parry worker` processes on a redis-server started here (the built
 * CLI: `npm run build` first). Each run is compared with the same seeded evaluation run locally;
 * results.json must be identical apart from wall-clock fields.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../../src/engine/paths.js';
import { doneIds, killAll, type ParryProcess, spawnParry, startWorkers } from './processes.js';
import { type RedisServer, startRedis } from './redis-server.js';

const models = path.join(packageRoot(), 'models');
let dir: string;
const running: ParryProcess[] = [];
const servers: RedisServer[] = [];

/** Two targets (one behind a preprocessing defense), gallery and honesty runs through the queue. */
const SMALL = {
  n: 10,
  batchSize: 5,
  seed: 11,
  models: [
    { path: path.join(models, 'fmnist-mlp') },
    { path: path.join(models, 'fmnist-mlp'), defense: { preprocess: 'squeeze-bits:bits=4' } },
  ],
  attacks: [{ attack: 'fgsm' }, { attack: 'pgd', params: { steps: 3 } }],
  eps: { linf: [0.05, 0.1] },
  gallery: { examples: 1 },
  explain: { methods: ['gradient'] },
  honesty: { examples: 4, unboundedSteps: 3, moreSteps: { factor: 1, restarts: 1 } },
};

/** Four jobs of about a second each (PGD-150 on a CNN, 4 images a job). */
const SLOW = {
  n: 8,
  batchSize: 4,
  seed: 5,
  models: [{ path: path.join(models, 'fmnist-cnn-small') }],
  attacks: [{ attack: 'pgd', params: { steps: 150 } }],
  eps: { linf: [0.05, 0.1] },
  gallery: { examples: 0 },
  honesty: { enabled: false },
};

/** One cell of two batches: the refused run and its resumption. */
const TINY = {
  n: 4,
  batchSize: 2,
  seed: 3,
  models: [{ path: path.join(models, 'fmnist-mlp') }],
  attacks: [{ attack: 'fgsm' }],
  eps: { linf: [0.1] },
  gallery: { examples: 0 },
  honesty: { enabled: false },
};

const configFile = (name: string) => path.join(dir, `${name}.json`);
const out = (name: string) => path.join(dir, name);

/** results.json without wall-clock fields. */
function numbers(outDir: string): string {
  const r = JSON.parse(readFileSync(path.join(outDir, 'results.json'), 'utf8'));
  return JSON.stringify(r, (k, v) =>
    ['seconds', 'started', 'finished'].includes(k) ? undefined : v,
  );
}

function parry(args: string[]): ParryProcess {
  const p = spawnParry(args);
  running.push(p);
  return p;
}

async function redis(): Promise<RedisServer> {
  const s = await startRedis();
  servers.push(s);
  return s;
}

async function workers(url: string, n: number, extra: string[] = []) {
  const w = await startWorkers(url, n, extra);
  running.push(...w);
  return w;
}

/** Runs a coordinator to its end; expects success. */
async function evaluate(config: string, outDir: string, url: string, extra: string[] = []) {
  const p = parry([
    'evaluate',
    '--config',
    configFile(config),
    '--out',
    outDir,
    '--queue',
    url,
    ...extra,
  ]);
  expect(await p.exited, p.lines.join('\n')).toBe(0);
  return p;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parry-queue-eval-'));
  writeFileSync(configFile('small'), JSON.stringify(SMALL));
  writeFileSync(configFile('slow'), JSON.stringify(SLOW));
  writeFileSync(configFile('tiny'), JSON.stringify(TINY));
  // The references: the same evaluations in one local thread.
  for (const name of ['small', 'slow', 'tiny']) {
    const p = parry([
      'evaluate',
      '--config',
      configFile(name),
      '--out',
      out(`${name}-local`),
      '--workers',
      '1',
    ]);
    expect(await p.exited, p.lines.join('\n')).toBe(0);
  }
});

afterAll(async () => {
  await killAll(running);
  for (const s of servers) await s.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('parry evaluate --queue', () => {
  it('gives the results of the local run, on 1 and on 3 worker processes', async () => {
    const [one, three] = await Promise.all([redis(), redis()]);
    const [w1, w3] = await Promise.all([workers(one.url, 1), workers(three.url, 3)]);
    const [c1] = await Promise.all([
      evaluate('small', out('small-1'), one.url),
      evaluate('small', out('small-3'), three.url),
    ]);
    const local = numbers(out('small-local'));
    expect(numbers(out('small-1'))).toBe(local);
    expect(numbers(out('small-3'))).toBe(local);
    expect(existsSync(path.join(out('small-3'), 'report.html'))).toBe(true);
    // Every job ran once, whichever worker took it.
    for (const ws of [w1, w3]) {
      const ids = ws.flatMap(doneIds);
      expect(new Set(ids).size).toBe(ids.length);
    }
    expect(c1.lines.some((l) => /^queue \|.*jobs/.test(l))).toBe(true);
  });

  it('finishes with every cell counted once when a worker is killed mid-job', async () => {
    const server = await redis();
    const fast = ['--lock-duration', '2000', '--stalled-interval', '1000'];
    const [victim, survivor] = await workers(server.url, 2, fast);
    const c = parry([
      'evaluate',
      '--config',
      configFile('slow'),
      '--out',
      out('slow-kill'),
      '--queue',
      server.url,
    ]);
    const started = await victim.waitFor(/^worker: start /);
    process.kill(victim.child.pid!, 'SIGKILL');
    expect(await c.exited, c.lines.join('\n')).toBe(0);
    expect(numbers(out('slow-kill'))).toBe(numbers(out('slow-local')));
    // The survivor took over the killed job.
    const id = /start ([0-9a-f]{12})/.exec(started)![1];
    expect(doneIds(victim)).not.toContain(id);
    expect(doneIds(survivor)).toContain(id);
  });

  it('finishes when Redis restarts mid-run', async () => {
    const server = await redis();
    const ws = await workers(server.url, 2, ['--lock-duration', '5000']);
    const c = parry([
      'evaluate',
      '--config',
      configFile('slow'),
      '--out',
      out('slow-restart'),
      '--queue',
      server.url,
    ]);
    await Promise.race(ws.map((w) => w.waitFor(/^worker: done /)));
    await server.stop();
    await new Promise((r) => setTimeout(r, 1000));
    await server.start();
    expect(await c.exited, c.lines.join('\n')).toBe(0);
    expect(numbers(out('slow-restart'))).toBe(numbers(out('slow-local')));
  });

  it('resumes after the coordinator is killed, without redoing finished work', async () => {
    const server = await redis();
    const [w] = await workers(server.url, 1);
    const outDir = out('slow-resume');
    const first = parry([
      'evaluate',
      '--config',
      configFile('slow'),
      '--out',
      outDir,
      '--queue',
      server.url,
    ]);
    const partial = path.join(outDir, 'partial.jsonl');
    // Killed once the first attack cell is in partial.jsonl (lines: a header, the clean cell,
    // then one per attack cell).
    for (;;) {
      if (existsSync(partial) && readFileSync(partial, 'utf8').trim().split('\n').length >= 3)
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    process.kill(first.child.pid!, 'SIGKILL');
    await first.exited;
    expect(existsSync(path.join(outDir, 'results.json'))).toBe(false);
    const second = await evaluate('slow', outDir, server.url, ['--resume']);
    expect(numbers(outDir)).toBe(numbers(out('slow-local')));
    const ids = doneIds(w);
    expect(ids.length).toBe(4); // two cells of two batches, each run once
    expect(new Set(ids).size).toBe(4);
    // The resumed coordinator asked only for the unfinished cell's two jobs.
    const totals = second.lines.flatMap((l) => /\/(\d+) jobs \| failed 0/.exec(l)?.[1] ?? []);
    expect(totals.at(-1)).toBe('2');
  });

  it('leaves out the refused cells with notes, exits 1, and resumes them with a fitting worker', async () => {
    const server = await redis();
    // A worker on another model engine would give other last digits: it refuses.
    const [refusing] = await workers(server.url, 1, ['--engine', 'tfjs']);
    const outDir = out('tiny-refused');
    const c = parry([
      'evaluate',
      '--config',
      configFile('tiny'),
      '--out',
      outDir,
      '--queue',
      server.url,
    ]);
    expect(await c.exited).toBe(1);
    const message = c.lines.filter((l) => l.startsWith('parry: ')).join('\n');
    expect(message).toMatch(
      /^parry: evaluate: 2 jobs failed \(queue: fmnist-mlp: fgsm linf 0\.1 · job [12]\/2: refused: the job asks for backend wasm and engine auto, this worker runs backend wasm and engine tfjs/,
    );
    expect(message).toMatch(/leave out 1 cell, each named in a note; partial\.jsonl keeps/);
    expect(message).toMatch(/fix the cause and rerun with --resume/);
    // The target is reported (its clean predictions ran here), without its refused cell.
    const results = JSON.parse(readFileSync(path.join(outDir, 'results.json'), 'utf8'));
    expect(results.targets.map((t: { attacks: unknown[] }) => t.attacks.length)).toEqual([0]);
    expect(results.notes[0]).toMatch(
      /^fmnist-mlp: fgsm linf 0\.1: left out: batch 1\/2 \(examples 0-1\) was refused by a worker: the job asks for backend wasm/,
    );
    expect(results.failed).toHaveLength(1);
    expect(results.failed[0]).toMatchObject({ attack: 'fgsm', eps: 0.1, refused: true });
    expect(existsSync(path.join(outDir, 'partial.jsonl'))).toBe(true);
    // The cause fixed (a worker on the coordinator's engine), --resume runs the failed jobs again.
    await killAll([refusing]);
    const [fitting] = await workers(server.url, 1);
    await evaluate('tiny', outDir, server.url, ['--resume']);
    expect(numbers(outDir)).toBe(numbers(out('tiny-local')));
    expect(doneIds(fitting)).toHaveLength(2);
  });
});
