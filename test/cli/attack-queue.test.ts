/**
 * `parry attack --queue`: the batches run on a `parry worker` process through a redis-server
 * started here (the built CLI: `npm run build` first). The result and the saved examples must be
 * those of the same seeded command run locally, apart from timings and what ran the jobs.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { KEY_PREFIX, QUEUE_NAME } from '../../src/engine/queue/redis.js';
import { killAll, type ParryProcess, spawnParry, startWorkers } from '../engine/queue/processes.js';
import { type RedisServer, startRedis } from '../engine/queue/redis-server.js';
import { expectBadInput } from './helpers.js';

const MLP = path.join(packageRoot(), 'models', 'fmnist-mlp');
let dir: string;
let redis: RedisServer;
const running: ParryProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'parry-attack-queue-'));
  redis = await startRedis();
  running.push(...(await startWorkers(redis.url, 1)));
});

afterAll(async () => {
  await killAll(running);
  await redis?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `parry attack ...args` to its end. */
async function attack(args: string[]) {
  const p = spawnParry(['attack', '--model', MLP, ...args]);
  running.push(p);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.lines.filter((l) => l !== '').join('\n') };
}

/** The result without timings (`seconds`, `fit_seconds`) or what ran the jobs (`workers`, `queue`). */
function numbers(stdout: string): Record<string, unknown> {
  const entries = Object.entries(JSON.parse(stdout) as Record<string, unknown>);
  return Object.fromEntries(
    entries.filter(([k]) => !k.endsWith('seconds') && k !== 'workers' && k !== 'queue'),
  );
}

/** Job counts by state in the test's Redis. */
async function jobCounts() {
  const queue = new Queue(QUEUE_NAME, { connection: { url: redis.url }, prefix: KEY_PREFIX });
  try {
    return await queue.getJobCounts('completed', 'failed', 'waiting', 'active');
  } finally {
    await queue.close();
  }
}

/**
 * The same command locally (one thread) and through the queue, at once: equal results, equal
 * files in `--save-examples` dirs, one bar over the queue's jobs, and no result left in Redis.
 */
async function compare(name: string, extra: string[]) {
  const common = ['--n', '12', '--batch-size', '5', '--seed', '7', '--json'];
  const saved = (run: string) => path.join(dir, `${name}-${run}`);
  const [local, queued] = await Promise.all([
    attack([...extra, ...common, '--save-examples', saved('local'), '--workers', '1']),
    attack([...extra, ...common, '--save-examples', saved('queue'), '--queue', redis.url]),
  ]);
  expect(local.code, local.stderr).toBe(0);
  expect(queued.code, queued.stderr).toBe(0);
  const q = JSON.parse(queued.stdout);
  expect(q.queue).toBe(redis.url);
  expect(q.workers).toBeUndefined();
  expect(q.n).toBe(12);
  expect(numbers(queued.stdout)).toEqual(numbers(local.stdout));
  // 12 examples in batches of 5: three jobs, under one bar named by the attack.
  expect(queued.stderr).toMatch(new RegExp(`queue \\|.*\\| 3/3 jobs \\| failed 0 \\| ${name}`));
  const files = readdirSync(saved('local')).sort();
  expect(files.length).toBeGreaterThan(3);
  expect(readdirSync(saved('queue')).sort()).toEqual(files);
  for (const f of files) {
    const bytes = (run: string) => readFileSync(path.join(saved(run), f));
    expect(bytes('queue').equals(bytes('local')), f).toBe(true);
  }
  // The results were gathered and printed: Redis keeps none of them.
  expect((await jobCounts()).completed).toBe(0);
}

describe('parry attack --queue', () => {
  it('gives the local result and examples on one worker process (pgd)', async () => {
    await compare('pgd', ['--attack', 'pgd', '--steps', '3', '--examples', '3']);
  });

  it('sends the perturbation uap fitted here along with each job', async () => {
    await compare('uap', ['--attack', 'uap', '--eps', '0.2', '--fit-examples', '8']);
  });

  it('exits 1 naming the refused job, keeping the finished results in Redis', async () => {
    // A coordinator on another model engine asks for what the worker (engine auto) does not run.
    const r = await attack([
      '--attack',
      'fgsm',
      '--n',
      '4',
      '--engine',
      'tfjs',
      '--queue',
      redis.url,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const message = r.stderr.split('\n').filter((l) => l.startsWith('parry: '));
    expect(message).toHaveLength(1);
    expect(message[0]).toMatch(
      /^parry: attack: queue: fgsm linf 0\.1: refused: the job asks for backend wasm and engine tfjs, this worker runs backend wasm and engine auto.*; the finished jobs' results stay in Redis: fix the cause and run the same command again/,
    );
    expect((await jobCounts()).failed).toBe(1);
  });

  it('refuses --attempts without --queue, a URL that is not redis, and --workers beside --queue', async () => {
    const [attempts, url, workers] = await Promise.all([
      attack(['--attempts', '2']),
      attack(['--queue', 'http://127.0.0.1:6379']),
      attack(['--queue', redis.url, '--workers', '2']),
    ]);
    expectBadInput(attempts, /^parry: attack: --attempts needs --queue URL$/);
    expectBadInput(
      url,
      /^parry: --queue: 'http:\/\/127\.0\.0\.1:6379' is not a redis:\/\/HOST:PORT/,
    );
    expectBadInput(workers, /^parry: attack: --workers 2 has no effect with --queue/);
  });
});
