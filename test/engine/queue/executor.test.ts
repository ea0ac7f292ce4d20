/**
 * The job queue on a real redis-server (started here): a coordinator (`QueueExecutor`) and a
 * worker (`QueueWorker`, in this process; its threads run dist/: `npm run build` first).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../../src/engine/paths.js';
import { WorkerPool } from '../../../src/engine/pool.js';
import {
  JobFailedError,
  QueueExecutor,
  type QueueProgress,
} from '../../../src/engine/queue/executor.js';
import { jobKey, parryVersion } from '../../../src/engine/queue/job.js';
import { withJobLabel } from '../../../src/engine/queue/label.js';
import { KEY_PREFIX, QUEUE_NAME } from '../../../src/engine/queue/redis.js';
import { QueueWorker, type WorkerEvent } from '../../../src/engine/queue/worker.js';
import { Rng } from '../../../src/engine/rng.js';
import { moduleTask } from '../../../src/engine/tasks.js';
import { type RedisServer, startRedis } from './redis-server.js';

const root = packageRoot();
const fixture = path.join(root, 'test', 'engine', 'queue', 'fixtures', 'tasks.mjs');
const task = <I, O>(name: string) => moduleTask<I, O>(fixture, name);
const modelDir = path.join(root, 'models', 'fmnist-mlp');

let redis: RedisServer;
let worker: QueueWorker;
let cacheDir: string;
const events: WorkerEvent[] = [];
const executors: QueueExecutor[] = [];
const starts = (label: RegExp) =>
  events.filter((e) => e.type === 'start' && label.test(e.label)).length;

function coordinator(options: Partial<ConstructorParameters<typeof QueueExecutor>[0]> = {}) {
  const q = new QueueExecutor({ url: redis.url, backoffMs: 20, pollMs: 200, ...options });
  executors.push(q);
  return q;
}

beforeAll(async () => {
  redis = await startRedis();
  cacheDir = mkdtempSync(path.join(tmpdir(), 'parry-assets-'));
  worker = await QueueWorker.start({
    url: redis.url,
    concurrency: 2,
    cacheDir,
    sharedPaths: false, // every model comes through Redis here
    onEvent: (e) => events.push(e),
  });
});

afterAll(async () => {
  for (const q of executors) await q.close();
  await worker?.stop('return');
  await redis?.destroy();
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('QueueExecutor with a QueueWorker', () => {
  it('gives the results of a local pool, in input order, with the same seeds', async () => {
    const counts: QueueProgress[] = [];
    const q = coordinator({ onProgress: (p) => counts.push(p) });
    await q.ready();
    const local = new WorkerPool({ workers: 0 });
    try {
      const inputs = Array.from({ length: 6 }, (_, i) => ({ i, ms: (6 - i) * 15 }));
      expect(await q.map(task('sleepEcho'), inputs)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(counts.at(-1)).toMatchObject({ total: 6, done: 6, failed: 0, progress: 6 });
      const draws = await q.map(task<null, number[]>('draw'), [null, null, null], {
        rng: new Rng(7),
      });
      expect(draws).toEqual(await local.map(task('draw'), [null, null, null], { rng: new Rng(7) }));
      expect(await q.run('sum', [1, 2, 3.5])).toBe(6.5);
    } finally {
      await local.close();
    }
  });

  it('keys a job by its content: the same work asked twice, or by a new coordinator, runs once', async () => {
    const inputs = [
      { i: 100, ms: 10 },
      { i: 101, ms: 10 },
      { i: 100, ms: 10 },
    ];
    const first = coordinator();
    await withJobLabel('dedup', () => first.map(task('sleepEcho'), inputs));
    expect(starts(/^dedup/)).toBe(2);
    // A coordinator started afresh (a restarted run) finds both results in Redis.
    const second = coordinator();
    expect(await withJobLabel('dedup again', () => second.map(task('sleepEcho'), inputs))).toEqual([
      100, 101, 100,
    ]);
    expect(starts(/^dedup again/)).toBe(0);
    // The key is the sha256 of the content: another seed is another job.
    const base = {
      parry: parryVersion(),
      task: 'sum',
      runtime: { backend: 'wasm', engine: 'auto' },
      input: [1],
    };
    const hex = /^[0-9a-f]{64}$/;
    expect(jobKey(base)).toMatch(hex);
    expect(jobKey({ ...base, seed: 1 })).not.toBe(jobKey(base));
    expect(jobKey({ ...base, parry: '9.9.9' })).not.toBe(jobKey(base));
    expect(jobKey({ ...base, input: [1] })).toBe(jobKey(base));
    // Removed once gathered.
    expect(await second.removeGathered()).toBe(2);
  });

  it('retries a failing job with backoff, then reports it while the other jobs finish', async () => {
    const counts: QueueProgress[] = [];
    const q = coordinator({ attempts: 3, onProgress: (p) => counts.push(p) });
    const inputs = [{ tag: 'a' }, { tag: 'b' }];
    const failing = task<{ tag: string }, never>('fail');
    const settled = await withJobLabel('failing cell', () => q.mapSettled(failing, inputs));
    expect(settled.map((s) => s.ok)).toEqual([false, false]);
    const error = (settled[0] as { error: JobFailedError }).error;
    expect(error).toBeInstanceOf(JobFailedError);
    expect(error.attempts).toBe(3);
    // Which job of the map call it was, for the caller's notes (a batch, an example).
    expect(error.part).toEqual({ index: 0, total: 2 });
    expect((settled[1] as { error: JobFailedError }).error.part).toEqual({ index: 1, total: 2 });
    expect(error.message).toBe(
      'queue: failing cell · job 1/2 failed after 3 attempts: fixture: always fails (a)',
    );
    expect(starts(/^failing cell · job 1\/2/)).toBe(3);
    expect(counts.at(-1)).toMatchObject({ total: 2, done: 0, failed: 2, progress: 2 });
    // `map` waits for every job, then rejects with the first failure in input order.
    const mixed = [
      { i: 1, ms: 400, fail: false },
      { i: 2, ms: 0, fail: true },
      { i: 3, ms: 0, fail: true },
    ];
    const sleepOrFail = task<{ i: number; ms: number; fail: boolean }, number>('sleepOrFail');
    await expect(withJobLabel('mixed', () => q.map(sleepOrFail, mixed))).rejects.toThrow(
      'queue: mixed · job 2/3 failed after 3 attempts: fixture: job 2 fails',
    );
    expect(events.some((e) => e.type === 'done' && e.label === 'mixed · job 1/3')).toBe(true);
    expect(q.failures().map((f) => f.label)).toContain('mixed · job 3/3');
  });

  it('retries a job that fails once and returns its result', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-once-'));
    try {
      const q = coordinator({ attempts: 2 });
      const out = await q.run(task<{ marker: string; tag: string }, string>('failOnce'), {
        marker: path.join(dir, 'marker'),
        tag: 'second time lucky',
      });
      expect(out).toBe('second time lucky');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('carries typed arrays, NaN, -0 and infinities exactly, and reports progress', async () => {
    const q = coordinator();
    const seen: number[] = [];
    const [out] = await q.map(
      task<{ ms: number }, Record<string, unknown>>('halves'),
      [{ ms: 1500 }],
      {
        onProgress: (done) => seen.push(done),
      },
    );
    expect(out.f).toBeInstanceOf(Float32Array);
    expect(Array.from(out.f as Float32Array)).toEqual([1.5, Number.NaN, -0]);
    expect(Object.is((out.f as Float32Array)[2], -0)).toBe(true);
    expect(out.i).toEqual(new Int32Array([-7, 3]));
    expect(out.inf).toBe(Number.NEGATIVE_INFINITY);
    expect(seen).toContain(0.5);
    expect(seen.at(-1)).toBe(1);
  });

  it('sends a model by content hash: fetched from Redis once, checked, kept in the cache', async () => {
    const q = coordinator();
    const readModel = task<{ modelDir: string; n?: number }, { text: string; dir: string }>(
      'readModel',
    );
    const outs = await q.map(readModel, [{ modelDir }, { modelDir, n: 1 }]);
    const expected = readFileSync(path.join(modelDir, 'model.json'), 'utf8');
    // Independently: sha256 over "name\0length\0" + bytes of each file, names sorted.
    const names = readdirSync(modelDir).sort();
    const hash = createHash('sha256');
    for (const name of names) {
      const bytes = readFileSync(path.join(modelDir, name));
      hash.update(Buffer.concat([Buffer.from(`${name}\u0000${bytes.length}\u0000`), bytes]));
    }
    const digest = hash.digest('hex');
    for (const out of outs) {
      expect(out.text).toBe(expected);
      expect(out.dir).toBe(path.join(cacheDir, digest));
    }
    expect(readdirSync(cacheDir)).toEqual([digest]);
  });

  it('is refused, at once and naming why, by a worker of another version or without the model', async () => {
    const queue = new Queue(QUEUE_NAME, { connection: { url: redis.url }, prefix: KEY_PREFIX });
    const queueEvents = new QueueEvents(QUEUE_NAME, {
      connection: { url: redis.url },
      prefix: KEY_PREFIX,
    });
    try {
      await queueEvents.waitUntilReady();
      const data = {
        format: 1,
        parry: parryVersion(),
        task: 'sum',
        runtime: { backend: 'wasm', engine: 'auto' },
        input: [1, 2],
        label: 'probe',
      };
      const missing = {
        $asset: 'a'.repeat(64),
        path: path.join(tmpdir(), 'no-such-model'),
        kind: 'dir',
      };
      const cases: [Record<string, unknown>, RegExp][] = [
        [
          { ...data, parry: '0.0.1-other' },
          /refused: the job was made by parry 0\.0\.1-other .*this worker runs parry /,
        ],
        [
          { ...data, runtime: { backend: 'cpu', engine: 'auto' } },
          /refused: the job asks for backend cpu and engine auto, this worker runs backend wasm/,
        ],
        [
          { ...data, task: { module: 'dist/src/x.js', name: 'x' }, input: { modelDir: missing } },
          /refused: the job needs directory .*no-such-model with content aaaaaaaaaaaa…, but .* is not readable here and Redis holds no copy of it/,
        ],
        [{ ...data, task: { module: '../../etc/x.js', name: 'x' } }, /refused: task module/],
      ];
      for (const [i, [job, message]] of cases.entries()) {
        const added = await queue.add('probe', job, { jobId: `refusal-${i}`, attempts: 3 });
        await expect(added.waitUntilFinished(queueEvents, 20_000)).rejects.toThrow(message);
        const stored = await queue.getJob(`refusal-${i}`);
        expect(stored?.attemptsMade).toBe(1);
      }
    } finally {
      await queueEvents.close();
      await queue.close();
    }
  });

  it('refuses a Redis that may evict keys', async () => {
    const lru = await startRedis(['--maxmemory-policy', 'allkeys-lru']);
    const q = new QueueExecutor({ url: lru.url });
    try {
      await expect(q.ready()).rejects.toThrow(
        /has maxmemory-policy allkeys-lru: it could evict jobs and results; set maxmemory-policy noeviction/,
      );
    } finally {
      await q.close();
      await lru.destroy();
    }
  });

  it('refuses a task outside the package', async () => {
    const q = coordinator();
    expect(() => q.run(moduleTask(path.join(tmpdir(), 'x.mjs'), 'f'), null as never)).toThrow(
      /outside parry's package/,
    );
    expect(existsSync(fixture)).toBe(true);
  });
});
