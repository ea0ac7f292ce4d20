/**
 * Load on `parry serve` over loopback, measured with autocannon. The real service (createService,
 * listening on an ephemeral 127.0.0.1 port) runs in this process on a bundled model; autocannon
 * fires from a child process, so the client shares neither the service's event loop nor its
 * memory (autocannon run inside the measured process, even on a worker thread, grew that
 * process's RSS by about 4 MB per run against a trivial server: the RSS would measure the client).
 *
 * The service has one API key, an audit log (in a temporary folder) and quotas loose enough not
 * to refuse anything: the point is the cost of the path every answered request takes. Each
 * request is one Fashion-MNIST test image as JSON (16 different images in turn).
 *
 * Measured, for micro-batching off (maxBatch 1), on (the default guard file's maxBatch 32,
 * maxWaitMs 2, wait 'busy'), timer (the same, wait 'always') and greedy (maxBatch 32,
 * maxWaitMs 0), at each connection count: requests/s, p50
 * and p99 latency, the non-2xx and 5xx counts, and the mean examples per forward pass (from the
 * service's own metrics). Then one long
 * run (default 100,000 requests, batching on) in segments, with the RSS, V8 heap and
 * tf.memory().numTensors after each: flat means no leak. Each run is bounded both in requests and
 * in seconds; a run cut short by time says how many requests it made.
 *
 *   npm run build && node --expose-gc dist/bench/serve-load.js [--model DIR] [--requests N]
 *     [--seconds S] [--connections 1,8,64] [--long N] [--long-seconds S] [--segments K]
 *     [--long-connections C] [--backend B]
 *
 * Prints one JSON object (stdout). The numbers depend on what else the machine runs: record the
 * load average that comes with them.
 */

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { firstExamples, loadDataset } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { enginesUsed, loadClassifier, type TfjsClassifier } from '../src/models/index.js';
import { hashApiKey, parseGuardConfig } from '../src/serve/guard-config.js';
import { createService } from '../src/serve/server.js';

/** The part of autocannon's result this benchmark reads. */
interface CannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '5xx': number;
  statusCodeStats: Record<string, { count: number }>;
  latency: { p50: number; p99: number; average: number; totalCount: number };
}
/** The child's program: autocannon (CommonJS) on the options read from stdin, result to stdout. */
const CLIENT = `const run = require(${JSON.stringify(createRequire(import.meta.url).resolve('autocannon'))});
let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { text += d; });
process.stdin.on('end', () => run(JSON.parse(text)).then(
  (r) => process.stdout.write(JSON.stringify(r)),
  (e) => { process.stderr.write(String(e && e.stack || e)); process.exit(1); }));`;

function autocannon(opts: Record<string, unknown>): Promise<CannonResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['-e', CLIENT],
      { maxBuffer: 64 * 2 ** 20 },
      (e, stdout, stderr) => {
        if (e) reject(new Error(`serve-load: autocannon failed: ${stderr || e.message}`));
        else resolve(JSON.parse(stdout) as CannonResult);
      },
    );
    child.stdin?.end(JSON.stringify(opts));
  });
}

export interface ServeLoadOptions {
  model: string;
  /** Most requests per cell (connections × batching). */
  requests: number;
  /** Most seconds per cell. */
  seconds: number;
  connections: number[];
  /** Requests of the long run (0: none), split into `segments` runs. */
  long: number;
  longSeconds: number;
  segments: number;
  longConnections: number;
  backend?: string;
}

export const DEFAULTS: ServeLoadOptions = {
  model: 'models/fmnist-cnn-small',
  requests: 5000,
  seconds: 20,
  connections: [1, 8, 64],
  long: 100_000,
  longSeconds: 600,
  segments: 10,
  longConnections: 8,
};

const KEY = 'serve-load-bench-key';
/**
 * off: one example per forward pass. on: the default guard file. greedy: no waiting, so a lone
 * request runs at once and only requests that arrive while a pass runs are gathered.
 */
const BATCHING = {
  off: { maxBatch: 1, maxWaitMs: 0 },
  on: { maxBatch: 32, maxWaitMs: 2, wait: 'busy' },
  timer: { maxBatch: 32, maxWaitMs: 2, wait: 'always' },
  greedy: { maxBatch: 32, maxWaitMs: 0 },
} as const;

export interface LoadCell {
  batching: keyof typeof BATCHING;
  connections: number;
  requests: number;
  seconds: number;
  requests_per_s: number;
  /** autocannon records latencies in whole milliseconds. */
  p50_ms: number;
  p99_ms: number;
  mean_ms: number;
  non2xx: number;
  status_5xx: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
  mean_batch_rows: number;
}

interface Running {
  url: string;
  close(): Promise<void>;
}

async function startService(
  model: TfjsClassifier,
  batching: keyof typeof BATCHING,
  auditDir: string,
): Promise<Running> {
  const guard = parseGuardConfig({
    guards: {
      apiKeys: [{ id: 'bench', sha256: hashApiKey(KEY) }],
      // Loose enough never to refuse: the load is one client address and one key.
      perAddress: { max: 1e9, windowMs: 60_000 },
      quota: { rate: 1e9, burst: 1e9, perDay: 1e12 },
    },
    batching: BATCHING[batching],
    audit: { path: path.join(auditDir, `audit-${batching}.log`) },
  });
  const app = await createService({ model, guard, page: false });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => closeWithin(app.close(), 30_000) };
}

/** A graceful close that hangs (a request counted in flight forever) is a failure, not a wait. */
async function closeWithin(closing: PromiseLike<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`serve-load: the service did not close in ${ms} ms`)),
      ms,
    );
  });
  try {
    await Promise.race([closing, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** `parry_batch_rows` sum and count from the service's /metrics. */
async function batchRows(url: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { sum: read('parry_batch_rows_sum'), count: read('parry_batch_rows_count') };
}

/** One autocannon run bounded by `requests` and `seconds`. */
async function fire(
  url: string,
  bodies: string[],
  connections: number,
  requests: number,
  seconds: number,
): Promise<CannonResult> {
  return autocannon({
    url: `${url}/v1/predict`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    requests: bodies.map((body) => ({ body })),
    connections,
    maxOverallRequests: Math.max(requests, connections),
    duration: seconds,
    timeout: 30,
    // The run ends at the first sample after its last response: sample often, so that its
    // duration (and requests/s) is not rounded up to whole seconds (the default sampleInt).
    sampleInt: 10,
  });
}

async function measureCell(
  url: string,
  bodies: string[],
  batching: keyof typeof BATCHING,
  connections: number,
  o: ServeLoadOptions,
): Promise<LoadCell> {
  const before = await batchRows(url);
  const r = await fire(url, bodies, connections, o.requests, o.seconds);
  const after = await batchRows(url);
  const statuses = Object.fromEntries(
    Object.entries(r.statusCodeStats).map(([s, v]) => [s, Number(v.count)]),
  );
  const done = r.latency.totalCount;
  return {
    batching,
    connections,
    requests: done,
    seconds: r.duration,
    requests_per_s: round(done / r.duration, 1),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    mean_ms: r.latency.average,
    non2xx: r.non2xx,
    status_5xx: r['5xx'],
    errors: r.errors,
    timeouts: r.timeouts,
    statuses,
    mean_batch_rows: round((after.sum - before.sum) / Math.max(1, after.count - before.count), 2),
  };
}

interface MemorySample {
  after_requests: number;
  rss_mb: number;
  heap_used_mb: number;
  heap_total_mb: number;
  /** Memory of C++ objects bound to JS (Buffers included), and of ArrayBuffers alone. */
  external_mb: number;
  array_buffers_mb: number;
  num_tensors: number;
  tensor_mb: number;
}

function memorySample(afterRequests: number): MemorySample {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const t = tf.memory();
  return {
    after_requests: afterRequests,
    rss_mb: round(m.rss / 2 ** 20, 1),
    heap_used_mb: round(m.heapUsed / 2 ** 20, 1),
    heap_total_mb: round(m.heapTotal / 2 ** 20, 1),
    external_mb: round(m.external / 2 ** 20, 1),
    array_buffers_mb: round(m.arrayBuffers / 2 ** 20, 1),
    num_tensors: t.numTensors,
    tensor_mb: round(t.numBytes / 2 ** 20, 3),
  };
}

/** The long run: `o.long` requests in `o.segments` runs, memory sampled before and after each. */
async function measureLong(url: string, bodies: string[], o: ServeLoadOptions) {
  const per = Math.ceil(o.long / o.segments);
  const memory = [memorySample(0)];
  let done = 0;
  let non2xx = 0;
  let status5xx = 0;
  let errors = 0;
  let seconds = 0;
  const p50: number[] = [];
  const p99: number[] = [];
  for (let s = 0; s < o.segments && done < o.long; s++) {
    const r = await fire(
      url,
      bodies,
      o.longConnections,
      Math.min(per, o.long - done),
      o.longSeconds / o.segments,
    );
    done += r.latency.totalCount;
    non2xx += r.non2xx;
    status5xx += r['5xx'];
    errors += r.errors + r.timeouts;
    seconds += r.duration;
    p50.push(r.latency.p50);
    p99.push(r.latency.p99);
    memory.push(memorySample(done));
  }
  const first = memory[1] ?? memory[0];
  const last = memory[memory.length - 1];
  return {
    batching: 'on',
    connections: o.longConnections,
    requests: done,
    seconds: round(seconds, 2),
    requests_per_s: round(done / seconds, 1),
    p50_ms_per_segment: p50,
    p99_ms_per_segment: p99,
    non2xx,
    status_5xx: status5xx,
    errors,
    memory,
    // From the end of the first segment (allocators and JIT settled) to the end of the run.
    rss_growth_mb: round(last.rss_mb - first.rss_mb, 1),
    heap_growth_mb: round(last.heap_used_mb - first.heap_used_mb, 1),
    tensor_growth: last.num_tensors - memory[0].num_tensors,
  };
}

/** Request bodies of the first `n` test images, and their labels from the model directly. */
function testBodies(model: TfjsClassifier, n: number): { bodies: string[]; labels: number[] } {
  const d = firstExamples(loadDataset('fashion-mnist-subset', 'test', { seed: 0 }), n);
  const size = d.x.length / n;
  const bodies = Array.from({ length: n }, (_, i) =>
    JSON.stringify({ inputs: [Array.from(d.x.subarray(i * size, (i + 1) * size))] }),
  );
  const x = tf.tensor(d.x, d.shape);
  const labels = tf.tidy(() => tf.argMax(model.logits(x), 1));
  const out = Array.from(labels.dataSync());
  tf.dispose([x, labels]);
  return { bodies, labels: out };
}

/** Refuses to measure a service that answers wrongly. */
async function checkAnswers(url: string, bodies: string[], labels: number[]): Promise<void> {
  for (let i = 0; i < bodies.length; i++) {
    const res = await fetch(`${url}/v1/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: bodies[i],
    });
    const got = ((await res.json()) as { predictions?: { label: number }[] }).predictions?.[0];
    if (res.status !== 200 || got?.label !== labels[i]) {
      throw new Error(
        `serve-load: image ${i}: status ${res.status}, label ${got?.label}, expected ${labels[i]}`,
      );
    }
  }
}

export async function benchServeLoad(o: ServeLoadOptions): Promise<Record<string, unknown>> {
  const backend = await initBackend(o.backend);
  const model = await loadClassifier(o.model);
  const auditDir = mkdtempSync(path.join(tmpdir(), 'parry-serve-load-'));
  const loadStart = loadavg();
  const { bodies, labels } = testBodies(model, 16);
  const cells: LoadCell[] = [];
  let long: Record<string, unknown> | undefined;
  try {
    for (const batching of ['off', 'on', 'timer', 'greedy'] as const) {
      const service = await startService(model, batching, auditDir);
      try {
        await checkAnswers(service.url, bodies, labels);
        await fire(service.url, bodies, 8, 500, 30); // warm-up, not recorded
        for (const c of o.connections) {
          const cell = await measureCell(service.url, bodies, batching, c, o);
          process.stderr.write(`${JSON.stringify(cell)}\n`);
          cells.push(cell);
        }
        if (batching === 'on' && o.long > 0) long = await measureLong(service.url, bodies, o);
      } finally {
        await service.close();
      }
    }
  } finally {
    model.dispose();
    rmSync(auditDir, { recursive: true, force: true });
  }
  return {
    benchmark: 'serve-load',
    model: o.model,
    backend,
    engine: enginesUsed().join('+'),
    node: process.version,
    cpus: cpus().length,
    gc_before_memory_samples: typeof (globalThis as { gc?: unknown }).gc === 'function',
    loadavg_start: loadStart.map((v) => round(v, 2)),
    loadavg_end: loadavg().map((v) => round(v, 2)),
    request_body_bytes: Math.round(bodies.reduce((a, b) => a + b.length, 0) / bodies.length),
    options: o,
    cells,
    long,
  };
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** `--name value` flags over DEFAULTS; an unknown flag or a bad number is an error. */
export function parseServeLoadArgs(args: readonly string[]): ServeLoadOptions {
  const o: ServeLoadOptions = { ...DEFAULTS, connections: [...DEFAULTS.connections] };
  const count = (flag: string, v: string | undefined, min: number) => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min) {
      throw new Error(`serve-load: ${flag} must be an integer >= ${min}, got '${v}'`);
    }
    return n;
  };
  for (let i = 0; i < args.length; i += 2) {
    const [flag, v] = [args[i], args[i + 1]];
    if (flag === '--model' && v !== undefined) o.model = v;
    else if (flag === '--backend' && v !== undefined) o.backend = v;
    else if (flag === '--requests') o.requests = count(flag, v, 1);
    else if (flag === '--seconds') o.seconds = count(flag, v, 1);
    else if (flag === '--long') o.long = count(flag, v, 0);
    else if (flag === '--long-seconds') o.longSeconds = count(flag, v, 1);
    else if (flag === '--segments') o.segments = count(flag, v, 1);
    else if (flag === '--long-connections') o.longConnections = count(flag, v, 1);
    else if (flag === '--connections') {
      o.connections = String(v)
        .split(',')
        .map((c) => count(flag, c, 1));
    } else
      throw new Error(
        `serve-load: unknown option '${flag}'${v === undefined ? ' (no value)' : ''}`,
      );
  }
  return o;
}

if (process.argv[1] != null && import.meta.url === pathToFileURL(process.argv[1]).href) {
  let options: ServeLoadOptions;
  try {
    options = parseServeLoadArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exit(2);
  }
  const result = await benchServeLoad(options);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
