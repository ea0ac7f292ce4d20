/**
 * `parry certify --method smoothing --queue`: one job per example on a `parry worker` process
 * through a redis-server started here (the built CLI: `npm run build` first). The result must be
 * that of the same seeded command run locally, apart from timings and what ran the jobs.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { killAll, type ParryProcess, spawnParry, startWorkers } from '../engine/queue/processes.js';
import { type RedisServer, startRedis } from '../engine/queue/redis-server.js';
import { expectBadInput } from './helpers.js';

const MLP = path.join(packageRoot(), 'models', 'fmnist-mlp');
const SMOOTHING = ['--method', 'smoothing', '--sigma', '0.25', '--n0', '20', '--n', '300'];
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

/** Runs `parry certify ...args` to its end. */
async function certify(args: string[]) {
  const p = spawnParry(['certify', '--model', MLP, ...args]);
  running.push(p);
  const code = await p.exited;
  return { code, stdout: p.stdout(), stderr: p.lines.filter((l) => l !== '').join('\n') };
}

describe('parry certify --method smoothing --queue', () => {
  it('gives the local certificates on one worker process', async () => {
    const common = [...SMOOTHING, '--n-examples', '5', '--seed', '3', '--per-example', '--json'];
    const [local, queued] = await Promise.all([
      certify([...common, '--workers', '1']),
      certify([...common, '--queue', redis.url]),
    ]);
    expect(local.code, local.stderr).toBe(0);
    expect(queued.code, queued.stderr).toBe(0);
    const l = JSON.parse(local.stdout);
    const q = JSON.parse(queued.stdout);
    expect(q.queue).toBe(redis.url);
    expect(q.per_example).toHaveLength(5);
    for (const r of [l, q]) {
      delete r.seconds;
      delete r.workers;
      delete r.queue;
    }
    expect(q).toEqual(l);
    // One job per example, under one bar named by the method.
    expect(queued.stderr).toMatch(/queue \|.*\| 5\/5 jobs \| failed 0 \| smoothing sigma 0\.25/);
  });

  it('exits 1 naming the refused job', async () => {
    const r = await certify([
      ...SMOOTHING,
      '--n-examples',
      '2',
      '--engine',
      'tfjs',
      '--queue',
      redis.url,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^parry: certify: queue: smoothing sigma 0\.25 · job [12]\/2: refused: the job asks for backend wasm and engine tfjs/m,
    );
  });

  it('refuses --queue with bound propagation, and --attempts without --queue', async () => {
    const [ibp, crown, attempts] = await Promise.all([
      certify(['--method', 'ibp', '--eps', '0.1', '--queue', redis.url]),
      certify(['--method', 'crown', '--eps', '0.1', '--queue', redis.url]),
      certify([...SMOOTHING, '--attempts', '2']),
    ]);
    expectBadInput(ibp, /^parry: certify: --queue runs --method smoothing only; ibp runs here/);
    expectBadInput(crown, /^parry: certify: --queue runs --method smoothing only; crown runs here/);
    expectBadInput(attempts, /^parry: certify: --attempts needs --queue URL$/);
  });
});
