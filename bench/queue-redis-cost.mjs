// Redis's cost per job of parry's queue: N jobs through a real redis-server (appendonly yes,
// as docs/distributed.md recommends), a `parry worker` process (concurrency 2) and one
// QueueExecutor; Redis main-thread CPU (INFO cpu) and commandstats before and after.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Run from the repository after `npm run build`: node bench/queue-redis-cost.mjs [PORT]
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const { Redis } = require('ioredis');
const { Queue } = require('bullmq');
const { QueueExecutor } = await import(`${root}/dist/src/engine/queue/executor.js`);
const { moduleTask } = await import(`${root}/dist/src/engine/tasks.js`);
const port = Number(process.argv[2] ?? 6401);
const dir = mkdtempSync(path.join(tmpdir(), 'redis-cost-'));
const server = spawn(
  'redis-server',
  [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--maxmemory-policy',
    'noeviction',
    '--save',
    '',
  ],
  { stdio: 'ignore' },
);
await new Promise((r) => setTimeout(r, 500));
const url = `redis://127.0.0.1:${port}`;
const worker = spawn(
  process.execPath,
  [`${root}/bin/parry.mjs`, 'worker', '--redis', url, '--concurrency', '2'],
  {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PARRY_BACKEND: 'wasm' },
  },
);
await new Promise((resolve) =>
  worker.stderr.on('data', (d) => {
    if (/ready/.test(String(d))) resolve();
  }),
);
const redis = new Redis(url);
const task = moduleTask(path.join(root, 'test/engine/queue/fixtures/tasks.mjs'), 'sleepEcho');
async function cpu() {
  const info = await redis.info('cpu');
  const get = (k) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)[1]);
  return {
    main: get('used_cpu_user_main_thread') + get('used_cpu_sys_main_thread'),
    all: get('used_cpu_user') + get('used_cpu_sys'),
  };
}
async function commands() {
  const info = await redis.info('commandstats');
  const out = {};
  for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+),usec=(\d+)/g))
    out[m[1]] = { calls: +m[2], usec: +m[3] };
  return out;
}
async function measure(name, n, floats, batch) {
  const memBefore = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  const aof0 = Number(/aof_current_size:(\d+)/.exec(await redis.info('persistence'))[1]);
  const q = new QueueExecutor({ url, backoffMs: 10, pollMs: 2000 });
  await q.ready();
  const c0 = await cpu();
  const s0 = await commands();
  const t0 = performance.now();
  const u0 = process.cpuUsage();
  // Submitted in waves of `batch` so the queue holds what a run of that many workers would.
  let done = 0;
  for (let start = 0; start < n; start += batch) {
    const inputs = Array.from({ length: Math.min(batch, n - start) }, (_, i) => ({
      i: start + i,
      ms: 0,
      tag: `${name}-${start + i}`,
      x: new Float32Array(floats).fill(start + i),
    }));
    done += (await q.map(task, inputs)).length;
  }
  const seconds = (performance.now() - t0) / 1000;
  const u1 = process.cpuUsage(u0);
  const c1 = await cpu();
  const s1 = await commands();
  const mem = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);
  const aof = Number(/aof_current_size:(\d+)/.exec(await redis.info('persistence'))[1]);
  const mem0 = memBefore;
  const removeStart = await cpu();
  await q.removeGathered();
  const removeEnd = await cpu();
  await q.close();
  let usec = 0;
  let calls = 0;
  const top = [];
  for (const [k, v] of Object.entries(s1)) {
    const d = { calls: v.calls - (s0[k]?.calls ?? 0), usec: v.usec - (s0[k]?.usec ?? 0) };
    usec += d.usec;
    calls += d.calls;
    if (d.calls > 0) top.push([k, d.calls / n, d.usec / n]);
  }
  top.sort((a, b) => b[2] - a[2]);
  console.log(
    JSON.stringify({
      name,
      jobs: done,
      payloadBytes: floats * 4,
      wallMsPerJob: ((seconds * 1000) / n).toFixed(2),
      coordinatorCpuUsPerJob: ((u1.user + u1.system) / n).toFixed(0),
      redisMainCpuUsPerJob: (((c1.main - c0.main) * 1e6) / n).toFixed(0),
      redisAllCpuUsPerJob: (((c1.all - c0.all) * 1e6) / n).toFixed(0),
      commandUsecPerJob: (usec / n).toFixed(0),
      commandsPerJob: (calls / n).toFixed(1),
      memoryKbPerJob: ((mem - mem0) / n / 1024).toFixed(0),
      aofKbPerJob: ((aof - aof0) / n / 1024).toFixed(0),
      removeCpuUsPerJob: (((removeEnd.main - removeStart.main) * 1e6) / n).toFixed(0),
      top: top.slice(0, 6).map(([k, c, u]) => `${k} ${c.toFixed(1)}x ${u.toFixed(0)}us`),
    }),
  );
}
async function progressCost(n) {
  const queue = new Queue('probe', { connection: { url }, prefix: 'bench' });
  const job = await queue.add('p', { x: 1 }, { jobId: 'progress-probe' });
  const c0 = await cpu();
  for (let i = 0; i < n; i++) await job.updateProgress(i / n);
  const c1 = await cpu();
  await queue.close();
  console.log(
    JSON.stringify({
      name: 'updateProgress',
      calls: n,
      redisMainCpuUsPerCall: (((c1.main - c0.main) * 1e6) / n).toFixed(0),
    }),
  );
}
try {
  await measure('a few bytes', 2000, 1, 200);
  await measure('100 kB', 400, 25_600, 100);
  await measure('fmnist batch 128 (401 kB)', 200, 128 * 784, 50);
  await progressCost(2000);
} finally {
  worker.kill('SIGKILL');
  redis.disconnect();
  server.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  rmSync(dir, { recursive: true, force: true });
}
