/**
 * `parry worker` (the built CLI: `npm run build` first): bad options exit 2 with one line; on a
 * redis-server started here, it takes jobs, and SIGTERM lets its running job finish, while a second
 * SIGTERM returns the job to the queue for another worker.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { QueueExecutor } from '../../src/engine/queue/executor.js';
import { moduleTask } from '../../src/engine/tasks.js';
import { killAll, type ParryProcess, startWorkers } from '../engine/queue/processes.js';
import { type RedisServer, startRedis } from '../engine/queue/redis-server.js';
import { expectBadInput, parry } from './helpers.js';

const fixture = path.join(packageRoot(), 'test', 'engine', 'queue', 'fixtures', 'tasks.mjs');
const sleepEcho = moduleTask<{ i: number; ms: number }, number>(fixture, 'sleepEcho');

let redis: RedisServer;
let queue: QueueExecutor;
const running: ParryProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  queue = new QueueExecutor({ url: redis.url, pollMs: 200 });
  await queue.ready();
});

afterAll(async () => {
  await queue?.close();
  await killAll(running);
  await redis?.destroy();
});

async function worker(): Promise<ParryProcess> {
  const [w] = await startWorkers(redis.url, 1);
  running.push(w);
  return w;
}

describe('parry worker', () => {
  it('refuses bad options with one line and exit 2', () => {
    expectBadInput(parry('worker'), /^parry: worker: --redis redis:\/\/HOST:PORT is required$/);
    expectBadInput(
      parry('worker', '--redis', 'http://127.0.0.1:1'),
      /^parry: --redis: 'http:\/\/127\.0\.0\.1:1' is not a redis:\/\/HOST:PORT or rediss:\/\/HOST:PORT URL/,
    );
    expectBadInput(
      parry('worker', '--redis', 'redis://127.0.0.1:1', '--concurrency', '0'),
      /concurrency/,
    );
    const out = path.join(tmpdir(), `parry-worker-test-${process.pid}`);
    const evaluate = ['evaluate', '--config', 'examples/quick.json', '--out', out];
    expectBadInput(
      parry(...evaluate, '--queue', 'redis:x:y'),
      /^parry: --queue: 'redis:x:y' is not a redis:\/\/HOST:PORT or rediss:\/\/HOST:PORT URL/,
    );
    expectBadInput(
      parry(...evaluate, '--attempts', '2'),
      /^parry: evaluate: --attempts needs --queue URL$/,
    );
  });

  it('finishes its running job on SIGTERM, then exits', async () => {
    const w = await worker();
    expect(w.lines[0]).toMatch(
      /^worker: ready: parry \d+\.\d+\.\d+, 1 thread, backend wasm, engine auto, queue redis:\/\/127\.0\.0\.1:\d+/,
    );
    const result = queue.run(sleepEcho, { i: 41, ms: 1500 });
    await w.waitFor(/^worker: start /);
    process.kill(w.child.pid!, 'SIGTERM');
    expect(await result).toBe(41);
    expect(await w.exited).toBe(0);
    expect(w.lines).toContain('worker: stopped after 1 job');
  });

  it('returns its running job to the queue on a second SIGTERM; another worker finishes it', async () => {
    const w = await worker();
    const result = queue.run(sleepEcho, { i: 42, ms: 2000 });
    const started = await w.waitFor(/^worker: start /);
    process.kill(w.child.pid!, 'SIGTERM');
    await w.waitFor(/finishing the running jobs/);
    process.kill(w.child.pid!, 'SIGTERM');
    expect(await w.exited).toBe(0);
    const id = /start ([0-9a-f]{12})/.exec(started)![1];
    expect(w.lines.some((l) => l.startsWith(`worker: returned ${id} `))).toBe(true);
    const other = await worker();
    expect(await result).toBe(42);
    await other.waitFor(new RegExp(`^worker: done ${id} `));
  });
});
