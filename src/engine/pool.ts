/**
 * A pool of worker threads for data-parallel work. The wasm backend is single-threaded in Node,
 * so each worker holds its own backend and the pool splits batches across them (DESIGN.md).
 *
 * - `workers` (default `os.availableParallelism()`): the number of threads; `0` runs every task
 *   in the calling thread, one job at a time, through the same task functions — for tests and
 *   for jobs too small to pay for a copy. `1` is one real thread (the caller's thread stays free).
 * - Each worker calls `initBackend(backend)` once; in-process, the pool calls it in the caller's
 *   thread (which switches the caller's backend if it was on another one).
 * - Jobs go to the next free worker. Results must not depend on which worker runs a job: give
 *   randomised jobs a seed (`run(..., {seed})`, or `map(..., {rng})`, which forks one child of
 *   `rng` per input in input order), and let `ctx.cache` hold only pure functions of their key.
 * - A task that throws rejects its job with the same message (a ParryError keeps its class and
 *   code); the worker stays. A worker that dies rejects its job and is replaced. A worker that
 *   fails to start (e.g. an unknown backend) fails the pool: every job rejects with that error.
 * - Idle workers are unref'd, so a forgotten pool does not keep Node alive; still call `close()`
 *   (or `await using pool = new WorkerPool()`).
 *
 * Workers run compiled JS (`dist/src/engine/worker.js`). From `src/` (vitest) the pool boots the
 * compiled worker, so the tasks a worker runs are those of the last `npm run build`.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { check, ParryError } from '../errors.js';
import { initBackend, resolveBackendName } from './backend.js';
import type { Rng } from './rng.js';
import {
  type BatchInput,
  checkTask,
  collectTransferables,
  describeTask,
  deserializeError,
  executeTask,
  type InputOf,
  type OutputOf,
  type TaskSpec,
} from './tasks.js';
import type { JobMessage, WorkerInit, WorkerMessage } from './worker.js';

export interface PoolOptions {
  /** Worker threads (default `os.availableParallelism()`); 0 runs tasks in the calling thread. */
  workers?: number;
  /** Backend every worker initialises (default: `resolveBackendName()`, i.e. $PARRY_BACKEND or wasm). */
  backend?: string;
}

export interface RunOptions {
  /** Seed of the job's `ctx.rng`. */
  seed?: number;
  /** Move (not copy) the input's ArrayBuffers to the worker; the caller's arrays become empty. */
  transfer?: boolean;
  /** Hears the share of the job done, in [0, 1], as the task reports it (`ctx.progress`). */
  onProgress?: (fraction: number) => void;
}

export interface MapOptions<I = unknown> {
  /** Job i gets `ctx.rng` seeded from the i-th draw of `rng` (independent of scheduling). */
  rng?: Rng;
  /** `true` moves every buffer of each input; a function picks the buffers to move. */
  transfer?: boolean | ((input: I, index: number) => ArrayBuffer[]);
  /**
   * Called after each job completes and whenever a running job reports progress
   * (`ctx.progress`): `done` is the number of jobs completed plus the reported fractions of
   * those still running, so it need not be a whole number.
   */
  onProgress?: (done: number, total: number) => void;
  /** Aborting drops the jobs not yet started and rejects the map. */
  signal?: AbortSignal;
}

/**
 * What runs tasks: the pool of worker threads below, or the job queue (`engine/queue`: worker
 * processes on any number of machines, through BullMQ on Redis). Code that only runs tasks takes
 * an executor, so every command has one code path whatever runs it; both keep the same contract
 * (results in input order, `rng` forked per input in input order, progress as finished jobs plus
 * the running ones' shares), so the same seeded work gives the same results on either.
 */
export interface Executor {
  /** Jobs that can run at once, for sizing shards; 0 runs tasks in the calling thread. */
  readonly size: number;
  /** Resolves once the executor can take jobs; rejects if it cannot start. */
  ready(): Promise<void>;
  run<T extends TaskSpec>(task: T, input: InputOf<T>, options?: RunOptions): Promise<OutputOf<T>>;
  map<T extends TaskSpec>(
    task: T,
    inputs: readonly InputOf<T>[],
    options?: MapOptions<InputOf<T>>,
  ): Promise<OutputOf<T>[]>;
  close(): Promise<void>;
}

interface Job {
  id: number;
  task: TaskSpec;
  input: unknown;
  seed?: number;
  transfer: ArrayBuffer[];
  group?: object;
  /** The job's own progress in [0, 1], as its task reports it. */
  progress?: (fraction: number) => void;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Slot {
  ready: boolean;
  job?: Job;
  worker?: Worker; // absent for the in-process slot
  error?: Error; // last 'error' event of the worker
  started: Promise<void>;
  markStarted(): void; // settles `started` (ready, failed or closed)
}

export class ThreadPool implements Executor {
  /** Worker threads; 0 for an in-process pool. */
  readonly size: number;
  readonly backend: string;
  private readonly slots: Slot[] = [];
  private queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private failure?: Error;
  private readonly entry?: URL;
  private readonly localCache = new Map<string, unknown>();

  constructor(options: PoolOptions = {}) {
    const n = options.workers ?? availableParallelism();
    check(
      Number.isInteger(n) && n >= 0,
      () => `WorkerPool: workers must be an integer >= 0, got ${n}`,
      'BAD_OPTION',
    );
    checkWorkerCount(n);
    this.size = n;
    this.backend = resolveBackendName(options.backend);
    if (n === 0) {
      this.slots.push(this.startLocal());
    } else {
      this.entry = workerEntry(import.meta.url);
      for (let i = 0; i < n; i++) this.slots.push(this.spawn(i));
    }
  }

  /** Resolves once every worker has initialised its backend; rejects if one failed to. */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.started));
    if (this.failure) throw this.failure;
    if (this.closed) throw new ParryError('INTERNAL', 'WorkerPool: the pool is closed');
  }

  /** Runs one job on the next free worker. */
  run<T extends TaskSpec>(
    task: T,
    input: InputOf<T>,
    options: RunOptions = {},
  ): Promise<OutputOf<T>> {
    const transfer = options.transfer ? collectTransferables(input) : [];
    const { seed, onProgress } = options;
    return this.submit(task, input, seed, transfer, undefined, onProgress) as Promise<OutputOf<T>>;
  }

  /**
   * Runs one job per input across the workers; results in input order. Rejects with the error of
   * the first job to fail (in completion order, which depends on scheduling) and cancels the rest.
   */
  async map<T extends TaskSpec>(
    task: T,
    inputs: readonly InputOf<T>[],
    options: MapOptions<InputOf<T>> = {},
  ): Promise<OutputOf<T>[]> {
    const { rng, transfer, onProgress, signal } = options;
    signal?.throwIfAborted();
    const group = {};
    const total = inputs.length;
    let done = 0;
    const running = new Map<number, number>(); // job index -> reported fraction
    const report = (): void => {
      let partial = 0;
      for (const f of running.values()) partial += f;
      onProgress?.(done + partial, total);
    };
    const jobs = inputs.map((input, i) => {
      const buffers =
        typeof transfer === 'function'
          ? transfer(input, i)
          : transfer
            ? collectTransferables(input)
            : [];
      const seed = rng?.nextUint32();
      const progress = onProgress
        ? (fraction: number) => {
            running.set(i, fraction);
            report();
          }
        : undefined;
      return this.submit(task, input, seed, buffers, group, progress).then((output) => {
        running.delete(i);
        done++;
        report();
        return output as OutputOf<T>;
      });
    });
    const onAbort = (): void => this.cancel(group, signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await Promise.all(jobs);
    } catch (e) {
      this.cancel(group, e);
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Terminates the workers; jobs not finished reject. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new ParryError('INTERNAL', 'WorkerPool: closed before the job finished');
    for (const job of this.queue) job.reject(closing);
    this.queue = [];
    for (const slot of this.slots) {
      slot.job?.reject(closing);
      slot.job = undefined;
      slot.markStarted();
    }
    await Promise.all(this.slots.map((s) => (s.worker ? terminate(s.worker) : undefined)));
    for (const value of this.localCache.values()) disposeCached(value);
    this.localCache.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private submit(
    task: TaskSpec,
    input: unknown,
    seed: number | undefined,
    transfer: ArrayBuffer[],
    group?: object,
    progress?: (fraction: number) => void,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.closed) throw new ParryError('INTERNAL', 'WorkerPool: the pool is closed');
      if (this.failure) throw this.failure;
      checkTask(task);
      check(
        seed === undefined || (Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff),
        () => `WorkerPool: seed must be an integer in [0, 2^32), got ${seed}`,
        'BAD_OPTION',
      );
      const id = this.nextId++;
      this.queue.push({ id, task, input, seed, transfer, group, progress, resolve, reject });
      this.pump();
    });
  }

  /** Hands queued jobs to free, ready slots. */
  private pump(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) break;
      if (!slot.ready || slot.job !== undefined) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      if (slot.worker) this.send(slot, slot.worker, job);
      else this.runLocal(slot, job);
    }
    this.updateRefs();
  }

  private send(slot: Slot, worker: Worker, job: Job): void {
    const message: JobMessage = {
      type: 'job',
      id: job.id,
      task:
        typeof job.task === 'string' ? job.task : { module: job.task.module, name: job.task.name },
      input: job.input,
      seed: job.seed,
    };
    try {
      try {
        worker.postMessage(message, job.transfer);
      } catch {
        worker.postMessage(message); // a buffer that cannot move is copied
      }
    } catch (e) {
      slot.job = undefined;
      job.reject(
        new ParryError(
          'BAD_INPUT',
          `WorkerPool: the input of task '${describeTask(job.task)}' cannot be sent to a worker: ${(e as Error).message}`,
        ),
      );
      queueMicrotask(() => this.pump());
    }
  }

  private runLocal(slot: Slot, job: Job): void {
    const progress = (fraction: number): void => {
      if (slot.job === job) job.progress?.(Math.min(1, Math.max(0, fraction)));
    };
    executeTask(job.task, job.input, job.seed, this.localCache, progress).then(
      (output) => this.finish(slot, job, () => job.resolve(output)),
      (error) => this.finish(slot, job, () => job.reject(error)),
    );
  }

  private finish(slot: Slot, job: Job, settle: () => void): void {
    if (slot.job !== job) return; // rejected already (closed, worker died)
    slot.job = undefined;
    this.pump();
    settle();
  }

  private startLocal(): Slot {
    const slot: Slot = { ready: false, started: Promise.resolve(), markStarted: () => {} };
    slot.started = initBackend(this.backend).then(
      () => {
        slot.ready = true;
        this.pump();
      },
      (e) => this.fail(e as Error),
    );
    return slot;
  }

  private spawn(index: number): Slot {
    const init: WorkerInit = { backend: this.backend };
    const worker = new Worker(this.entry!, { workerData: init, execArgv: workerExecArgv() });
    let markStarted!: () => void;
    const started = new Promise<void>((r) => {
      markStarted = r;
    });
    const slot: Slot = { ready: false, worker, started, markStarted };
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'ready') {
        slot.ready = true;
        markStarted();
        this.pump();
      } else if (msg.type === 'init-error') {
        this.fail(deserializeError(msg.error));
      } else if (slot.job?.id === msg.id) {
        const job = slot.job;
        if (msg.type === 'progress') job.progress?.(msg.fraction);
        else if (msg.type === 'result') this.finish(slot, job, () => job.resolve(msg.output));
        else this.finish(slot, job, () => job.reject(deserializeError(msg.error)));
      }
    });
    worker.on('error', (e) => {
      slot.error = e;
    });
    worker.on('exit', (code) => {
      if (this.closed || this.failure || this.slots[index] !== slot) return;
      const cause = slot.error ? `: ${slot.error.message}` : '';
      if (!slot.ready) {
        this.fail(
          new ParryError(
            'INTERNAL',
            `WorkerPool: a worker exited with code ${code} while starting${cause}`,
            {
              cause: slot.error,
            },
          ),
        );
        return;
      }
      const job = slot.job;
      slot.job = undefined;
      this.slots[index] = this.spawn(index);
      job?.reject(
        new ParryError(
          'INTERNAL',
          `WorkerPool: a worker exited with code ${code} while running task '${describeTask(job.task)}'${cause}`,
          { cause: slot.error },
        ),
      );
      this.pump();
    });
    return slot;
  }

  /** A worker could not start: every job, queued or future, rejects with `error`. */
  private fail(error: Error): void {
    if (this.failure || this.closed) return;
    this.failure = error;
    for (const job of this.queue) job.reject(error);
    this.queue = [];
    for (const slot of this.slots) {
      slot.job?.reject(error);
      slot.job = undefined;
      slot.markStarted();
      void slot.worker?.terminate();
    }
  }

  /** Drops the queued jobs of one `map` call. */
  private cancel(group: object, reason: unknown): void {
    const kept: Job[] = [];
    for (const job of this.queue) {
      if (job.group === group) job.reject(reason);
      else kept.push(job);
    }
    this.queue = kept;
    this.updateRefs();
  }

  /** Workers keep Node alive while starting or while there is work; idle ones do not. */
  private updateRefs(): void {
    const busy = this.queue.length > 0 || this.slots.some((s) => s.job !== undefined);
    for (const slot of this.slots) {
      if (!slot.worker) continue;
      if (busy || !slot.ready) slot.worker.ref();
      else slot.worker.unref();
    }
  }
}

/**
 * `new WorkerPool(options)` starts a pool of threads; the type `WorkerPool` is any executor, so the
 * code that takes a pool takes the job queue as well.
 */
export const WorkerPool = ThreadPool;
export type WorkerPool = Executor;

/**
 * Splits `data` along its first axis into batches of `batchSize` rows, runs `task` on
 * `{...extra, x: batch, shape: [rows, ...data.shape.slice(1)]}` for each, and returns the results
 * in batch order. `data.x` is not modified (each batch is copied once and moved to its worker).
 */
export async function mapBatches<T extends TaskSpec>(
  pool: WorkerPool,
  task: T,
  data: BatchInput,
  batchSize: number,
  extra?: Omit<InputOf<T>, 'x' | 'shape'>,
  options: Omit<MapOptions, 'transfer'> = {},
): Promise<OutputOf<T>[]> {
  const { x, shape } = data;
  const n = shape[0];
  const row = shape.slice(1).reduce((a, b) => a * b, 1);
  check(
    shape.length >= 1 && n * row === x.length,
    () => `mapBatches: shape [${shape}] does not match x.length ${x.length}`,
  );
  check(
    Number.isInteger(batchSize) && batchSize > 0,
    () => `mapBatches: batchSize must be a positive integer, got ${batchSize}`,
    'BAD_OPTION',
  );
  const inputs: BatchInput[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(start + batchSize, n);
    // In-process a view is enough; for a worker, a copy it can own.
    const batch =
      pool.size === 0 ? x.subarray(start * row, end * row) : x.slice(start * row, end * row);
    inputs.push({ ...extra, x: batch, shape: [end - start, ...shape.slice(1)] });
  }
  return pool.map(task, inputs as InputOf<T>[], {
    ...options,
    transfer: pool.size === 0 ? false : (input) => [(input as BatchInput).x.buffer as ArrayBuffer],
  });
}

/** Concatenates Float32Array results (e.g. the logits of `mapBatches`) into one array. */
export function concatFloat32(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** The compiled worker next to this file, or `<package root>/dist/...` when running from src/. */
function workerEntry(from: string): URL {
  const here = new URL(from);
  const entry = here.pathname.endsWith('.ts')
    ? new URL('../../dist/src/engine/worker.js', here)
    : new URL('./worker.js', here);
  if (!existsSync(entry)) {
    throw new ParryError(
      'BAD_FILE',
      `WorkerPool: worker entry ${fileURLToPath(entry)} not found; run \`npm run build\` first`,
    );
  }
  return entry;
}

/** The parent's Node flags minus those about its own script (`node --input-type=module -e`). */
function workerExecArgv(): string[] {
  const args: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const a = process.execArgv[i];
    if (/^--(input-type|eval|print)=/.test(a)) continue;
    if (['--input-type', '-e', '--eval', '-p', '--print', '-pe'].includes(a)) i++;
    else args.push(a);
  }
  return args;
}

/**
 * `worker.terminate()`, settled within `TERMINATE_WAIT_MS` whatever happens: a timer keeps the
 * caller's event loop alive meanwhile, so a script awaiting `close()` cannot drain its loop with
 * the await unsettled (seen once on a loaded machine: Node exited 13, "unsettled top-level
 * await"); a thread that has not stopped by then is left to Node.
 */
async function terminate(worker: Worker): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, TERMINATE_WAIT_MS);
  });
  try {
    await Promise.race([worker.terminate().then(() => undefined), waited]);
  } finally {
    clearTimeout(timer);
  }
}

const TERMINATE_WAIT_MS = 10_000;

function disposeCached(value: unknown): void {
  const items = Array.isArray(value) ? value : [value];
  for (const item of items) {
    const d = (item as { dispose?: unknown } | null)?.dispose;
    if (typeof d === 'function') d.call(item);
  }
}

/**
 * Worker threads for `jobs` independent jobs: as many as asked (default one per core), never more
 * than there are jobs. A result of 0 or 1 means: run in the calling thread.
 */
export function chooseWorkers(
  requested: number | undefined,
  jobs = Number.POSITIVE_INFINITY,
): number {
  if (requested !== undefined) checkWorkerCount(requested);
  return Math.min(requested ?? availableParallelism(), jobs);
}

/**
 * Refuses more than four workers per core: each holds its own backend, model and engine
 * sessions, so past the cores they only add memory and contention.
 */
export function checkWorkerCount(n: number): void {
  const cores = availableParallelism();
  check(
    n <= 4 * cores,
    () => `workers ${n} is more than 4 per core (${cores} cores here: at most ${4 * cores})`,
    'BAD_OPTION',
  );
}
