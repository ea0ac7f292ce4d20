import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchConvInput, benchConv, benchConvTask } from '../../bench/pool-tasks.js';
import { concatFloat32, mapBatches, WorkerPool } from '../../src/engine/pool.js';
import { Rng } from '../../src/engine/rng.js';
import { moduleTask } from '../../src/engine/tasks.js';
import { ParryError } from '../../src/errors.js';
import { saveLayersModel } from '../../src/models/io.js';
import { loadClassifier } from '../../src/models/load.js';
import { forwardTask } from '../../src/models/pool-tasks.js';

// Workers run the compiled tree: `npm test` (or `npx tsc -p tsconfig.json`) builds dist/ first.
const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = (p: string): string => pathToFileURL(path.join(root, 'dist', p)).href;

// Module tasks the registry does not need: errors, crashes, scheduling probes.
const FIXTURE = `
import { threadId } from 'node:worker_threads';
import { ParryError } from '${dist('src/errors.js')}';
export function fail(input) { throw new ParryError('BAD_INPUT', 'fixture: bad input ' + input); }
export function failPlain() { const e = new Error('plain failure'); e.code = 'EPLAIN'; throw e; }
export function exit(code) { process.exit(code); }
export function throwLater() {
  setTimeout(() => { throw new Error('async boom'); });
  return new Promise(() => {});
}
export async function sleepEcho({ i, ms }) {
  await new Promise((r) => setTimeout(r, ms));
  return i;
}
export function badOutput() { return { f: () => 1 }; }
export async function whoami(ms) {
  await new Promise((r) => setTimeout(r, ms));
  return threadId;
}
export function draw(_input, ctx) { return ctx.rng.nextUint32(); }
export async function halves(ms, ctx) {
  ctx.progress?.(0.5);
  await new Promise((r) => setTimeout(r, ms));
  ctx.progress?.(2); // out of range: the pool clamps it to 1
  return ms;
}
`;

let dir: string;
let fixture: string;
const task = <I, O>(name: string) => moduleTask<I, O>(fixture, name);

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'parry-pool-'));
  fixture = path.join(dir, 'fixture.mjs');
  writeFileSync(fixture, FIXTURE);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function images(n: number, seed: number): { x: Float32Array; shape: number[] } {
  const rng = new Rng(seed);
  const x = new Float32Array(n * 28 * 28);
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  return { x, shape: [n, 28, 28, 1] };
}

describe('WorkerPool with 2 workers', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = new WorkerPool({ workers: 2 });
    await pool.ready();
  });
  afterAll(() => pool.close());

  it('returns results in input order when jobs finish out of order', async () => {
    const rng = new Rng(3);
    const inputs = Array.from({ length: 60 }, (_, i) => ({ i, ms: rng.int(8) }));
    const progress: number[] = [];
    const out = await pool.map(task<{ i: number; ms: number }, number>('sleepEcho'), inputs, {
      onProgress: (done, total) => {
        expect(total).toBe(60);
        progress.push(done);
      },
    });
    expect(out).toEqual(inputs.map((d) => d.i));
    expect(progress).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    const sums = await pool.map('sum', [[1, 2], new Float32Array([3, 4]), []]);
    expect(sums).toEqual([3, 7, 0]);
  });

  it('adds the progress running jobs report to the count of finished ones', async () => {
    for (const p of [pool, new WorkerPool({ workers: 0 })]) {
      const seen: number[] = [];
      // 400 ms between a job's two reports: more than the worker's 250 ms throttle.
      await p.map(task<number, number>('halves'), [400, 400, 400], {
        onProgress: (done) => seen.push(done),
      });
      if (p !== pool) await p.close();
      expect(seen.length, `${seen}`).toBeGreaterThan(3); // more than one call per job
      expect(
        seen.some((d) => d % 1 === 0.5),
        `${seen}`,
      ).toBe(true);
      expect(
        seen.every((d, i) => i === 0 || d >= seen[i - 1]),
        `${seen}`,
      ).toBe(true);
      expect(Math.max(...seen)).toBeLessThanOrEqual(3);
      expect(seen[seen.length - 1]).toBe(3);
    }
  });

  it('spreads jobs over both workers', async () => {
    // Two slow jobs queued together: the second cannot wait for the busy first worker.
    const threads = await pool.map(task<number, number>('whoami'), [50, 50]);
    expect(new Set(threads).size).toBe(2);
  });

  it('rejects with the worker error, message and code kept, and keeps working', async () => {
    const bad: BenchConvInput = { x: new Float32Array(4), shape: [1, 2, 2, 1] };
    const err = await pool.run(benchConvTask(), bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParryError);
    expect((err as ParryError).code).toBe('BAD_INPUT');
    expect((err as Error).message).toBe(
      'benchConv: shape must be [batch, h, w, c] with h, w >= 6, got [1,2,2,1]',
    );
    await expect(pool.run(task<number, never>('fail'), 7)).rejects.toMatchObject({
      name: 'ParryError',
      code: 'BAD_INPUT',
      message: 'fixture: bad input 7',
    });
    await expect(pool.run(task<null, never>('failPlain'), null)).rejects.toMatchObject({
      message: 'plain failure',
      code: 'EPLAIN',
    });
    await expect(pool.run(task<null, unknown>('badOutput'), null)).rejects.toThrow(
      /could not be cloned/,
    );
    await expect(pool.run('echo', { f: () => 1 })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    // One failing job rejects its map (whichever fails first: workers race); the pool runs on.
    await expect(pool.map(task<number, never>('fail'), [1, 2, 3])).rejects.toMatchObject({
      code: 'BAD_INPUT',
      message: expect.stringMatching(/^fixture: bad input [123]$/),
    });
    expect(await pool.run('sum', [40, 2])).toBe(42);
  });

  it('rejects bad tasks before they reach a worker', async () => {
    await expect(pool.run('nope' as 'sum', [1])).rejects.toMatchObject({ code: 'BAD_OPTION' });
    await expect(pool.run({ module: 'relative.mjs', name: 'x' }, null)).rejects.toMatchObject({
      code: 'BAD_OPTION',
    });
    await expect(pool.run(task<null, never>('missing'), null)).rejects.toThrow(
      /does not export a function 'missing'/,
    );
  });

  it('replaces a worker that exits or throws outside a job', async () => {
    const before = new Set(await pool.map(task<number, number>('whoami'), [50, 50]));
    await expect(pool.run(task<number, never>('exit'), 3)).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringMatching(/exited with code 3 while running task .*#exit/),
    });
    await expect(pool.run(task<null, never>('throwLater'), null)).rejects.toThrow(/async boom/);
    const jobs = Array.from({ length: 12 }, (_, i) => ({ i, ms: 5 }));
    expect(await pool.map(task<{ i: number; ms: number }, number>('sleepEcho'), jobs)).toEqual(
      jobs.map((j) => j.i),
    );
    await pool.ready(); // the replacements have started
    const after = new Set(await pool.map(task<number, number>('whoami'), [50, 50]));
    expect(after.size).toBe(2);
    expect([...after].some((id) => !before.has(id))).toBe(true);
  });

  it('mapBatches covers every row once, in order', async () => {
    const data = images(101, 1);
    const copy = data.x.slice();
    const parts = await mapBatches(pool, 'echo', data, 16);
    expect(parts).toHaveLength(7);
    const echoed = parts as unknown as { x: Float32Array; shape: number[] }[];
    expect(echoed.map((p) => p.shape[0])).toEqual([16, 16, 16, 16, 16, 16, 5]);
    expect(concatFloat32(echoed.map((p) => p.x))).toEqual(copy);
    expect(data.x).toEqual(copy); // the caller's array is not moved
  });

  it('mapBatches of benchConv matches the same task run in-process on the whole set', async () => {
    const data = images(70, 2);
    const logits = concatFloat32(await mapBatches(pool, benchConvTask(), data, 32, { seed: 5 }));
    const cache = new Map<string, unknown>();
    const expected = await benchConv({ ...data, seed: 5 }, { cache });
    for (const t of cache.values()) tf.dispose(t as tf.Tensor[]);
    expect(logits).toHaveLength(700);
    const maxAbs = Math.max(...expected.map(Math.abs));
    const maxDiff = Math.max(...logits.map((v, i) => Math.abs(v - expected[i])));
    expect(maxDiff).toBeLessThan(1e-5 * maxAbs);
  });

  it('gives each map job a seed that does not depend on scheduling', async () => {
    const draws = await pool.map(task<number, number>('draw'), [0, 0, 0, 0, 0], {
      rng: new Rng(9),
    });
    const rng = new Rng(9);
    const expected = Array.from({ length: 5 }, () => rng.fork().nextUint32());
    expect(draws).toEqual(expected);
    expect(await pool.run(task<number, number>('draw'), 0, { seed: 11 })).toBe(
      new Rng(11).nextUint32(),
    );
    await expect(pool.run('sum', [1], { seed: -1 })).rejects.toMatchObject({ code: 'BAD_OPTION' });
  });

  it('stops queued jobs of a map when aborted', async () => {
    const controller = new AbortController();
    const jobs = Array.from({ length: 40 }, (_, i) => ({ i, ms: 20 }));
    const run = pool.map(task<{ i: number; ms: number }, number>('sleepEcho'), jobs, {
      signal: controller.signal,
      onProgress: (done) => done === 2 && controller.abort(new Error('stop')),
    });
    await expect(run).rejects.toThrow('stop');
    expect(await pool.run('sum', [1])).toBe(1);
  });

  it('runs the forward task on a saved model', async () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 4, kernelSize: 3 }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10, kernelInitializer: 'glorotNormal' }),
      ],
    });
    const modelDir = path.join(dir, 'model');
    await saveLayersModel(model, modelDir);
    model.dispose();
    const data = images(40, 4);
    const logits = concatFloat32(await mapBatches(pool, forwardTask(), data, 10, { modelDir }));
    const local = await loadClassifier(modelDir);
    const expected = tf.tidy(() => local.logits(tf.tensor(data.x, data.shape)));
    const want = await expected.data();
    expected.dispose();
    local.dispose();
    expect(logits).toHaveLength(400);
    for (let i = 0; i < want.length; i++) expect(logits[i]).toBeCloseTo(want[i], 4);
  });
});

describe('WorkerPool sizes', () => {
  it('gives the same results with 0 (in-process), 1 and 2 workers', async () => {
    const data = images(90, 7);
    const results: Float32Array[] = [];
    for (const workers of [0, 1, 2]) {
      const pool = new WorkerPool({ workers });
      try {
        results.push(concatFloat32(await mapBatches(pool, benchConvTask(), data, 25, { seed: 3 })));
        expect(await pool.map('sum', [[1], [2, 2]])).toEqual([1, 4]);
      } finally {
        await pool.close();
      }
    }
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });

  it('in-process errors are the original errors and closing frees cached tensors', async () => {
    const before = tf.memory().numTensors;
    const pool = new WorkerPool({ workers: 0 });
    await pool.run(benchConvTask(), { ...images(2, 1), seed: 1 });
    // The task's module is the compiled one (dist/), so its ParryError class is dist's: match by
    // name and code.
    await expect(
      pool.run(benchConvTask(), { x: new Float32Array(1), shape: [1] }),
    ).rejects.toMatchObject({ name: 'ParryError', code: 'BAD_INPUT' });
    await pool.close();
    expect(tf.memory().numTensors).toBe(before);
    await expect(pool.run('sum', [1])).rejects.toThrow(/closed/);
  });

  it('rejects bad options and a backend that does not exist', async () => {
    expect(() => new WorkerPool({ workers: -1 })).toThrow(/workers must be an integer >= 0/);
    expect(() => new WorkerPool({ workers: 1.5 })).toThrow(ParryError);
    const pool = new WorkerPool({ workers: 1, backend: 'nope' });
    try {
      await expect(pool.ready()).rejects.toMatchObject({ code: 'BAD_OPTION' });
      await expect(pool.run('sum', [1])).rejects.toThrow(/unknown backend 'nope'/);
    } finally {
      await pool.close();
    }
  });

  it('leaves no handles after close: a script using it exits on its own', () => {
    const script = `
      import { WorkerPool } from '${dist('src/engine/pool.js')}';
      const pool = new WorkerPool({ workers: 2 });
      const out = await pool.map('sum', [[1, 2], [3]]);
      const running = pool.run('sum', [1]).catch((e) => e.message); // busy workers are ref'd
      await pool.close();
      const left = process.getActiveResourcesInfo().filter((r) => /Worker|MessagePort/.test(r));
      console.log(JSON.stringify({ out, running: await running, left }));
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(JSON.parse(child.stdout)).toEqual({
      out: [3, 3],
      running: 'WorkerPool: closed before the job finished',
      left: [],
    });
  });
});
