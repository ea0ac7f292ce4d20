/**
 * `parry privacy --queue`: the target and reference models train as one job each on a
 * `parry worker` process through a redis-server started here (the built CLI: `npm run build`
 * first). The result must be that of the same seeded command run locally, apart from timings and
 * what ran the jobs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, type ParryProcess, spawnParry, startWorkers } from '../engine/queue/processes.js';
import { type RedisServer, startRedis } from '../engine/queue/redis-server.js';
import { expectBadInput } from './helpers.js';

let redis: RedisServer;
const running: ParryProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  running.push(...(await startWorkers(redis.url, 1)));
});

afterAll(async () => {
  await killAll(running);
  await redis?.destroy();
});

async function privacy(args: string[]) {
  const p = spawnParry(['privacy', ...args]);
  running.push(p);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.lines.filter((l) => l !== '').join('\n') };
}

/** The record without timings and without what ran the jobs. */
function comparable(stdout: string) {
  return JSON.parse(stdout, (key, v) =>
    key === 'seconds' || /Seconds$/.test(key) || key === 'queue' ? undefined : v,
  );
}

describe('parry privacy --queue', () => {
  it('trains the models on a worker process and gives the local results', async () => {
    const common = [
      ...['--pool', '40', '--population', '10', '--reference-models', '2', '--arch', 'mlp'],
      ...['--epochs', '2', '--queries', 'none', '--attacks', 'loss,rmia', '--seed', '5', '--json'],
    ];
    const [local, queued] = await Promise.all([
      privacy([...common, '--workers', '1']),
      privacy([...common, '--queue', redis.url]),
    ]);
    expect(local.code, local.stderr).toBe(0);
    expect(queued.code, queued.stderr).toBe(0);
    expect(JSON.parse(queued.stdout).queue).toBe(redis.url);
    expect(comparable(queued.stdout)).toEqual(comparable(local.stdout));
    // One job per model (target + 2 references) under the queue's bar.
    expect(queued.stderr).toMatch(/queue \|.*\| 3\/3 jobs \| failed 0 \| privacy model/);
  });

  it('refuses --workers beside --queue, and --attempts without it', async () => {
    const [workers, attempts] = await Promise.all([
      privacy(['--queue', redis.url, '--workers', '2']),
      privacy(['--attempts', '2']),
    ]);
    expectBadInput(workers, /^parry: privacy: --workers 2 has no effect with --queue/);
    expectBadInput(attempts, /^parry: privacy: --attempts needs --queue URL$/);
  });
});
