/**
 * `QueueExecutor`: the executor whose jobs run on `parry worker` processes, on this machine or
 * others, through a BullMQ queue on Redis. Plain jobs plus the queue's event stream, no flow: a
 * coordinator fans out one job per input and gathers each result by its key, which a flow's parent
 * job would only duplicate (and a flow's children cannot be shared between two parents, while two
 * cells or two runs asking for the same work must share its one job).
 *
 * - A job's BullMQ jobId is the hash of its content (job.ts): submitting the same work again — a
 *   prefetch, a retry of a whole run, a restarted coordinator — finds the existing job and its
 *   result instead of adding another. Results stay in Redis until `removeGathered()`, which the
 *   caller calls once it has stored them (an evaluation: in results.json).
 * - A job that throws is retried `attempts` times with exponential backoff (`backoffMs`, then
 *   twice that, ...), then fails with its last error; `map` waits for every other job of the call
 *   before it rejects with a `JobFailedError` naming the job's label, attempts and error. A worker
 *   refusing a job (another parry version, a model whose content differs) fails it at once.
 * - A worker that dies mid-job loses its lock; another worker's stalled-job check puts the job
 *   back in the queue. The coordinator hears completions on the event stream and, in case an event
 *   was missed (Redis restarted), asks for the state of its open jobs every `pollMs`; a job Redis
 *   no longer knows is added again.
 * - Paths in the input fields named by `assetKeys` (default `modelDir`) travel by content hash
 *   (assets.ts); the files are stored in Redis once per run.
 */
import { type Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { check, ParryError } from '../../errors.js';
import { resolveBackendName } from '../backend.js';
import type { Executor, MapOptions, RunOptions } from '../pool.js';
import { describeTask, type InputOf, type OutputOf, type TaskSpec } from '../tasks.js';
import { AssetHasher, type AssetRef, uploadAsset } from './assets.js';
import { decodeValue, encodeValue } from './codec.js';
import {
  engineSetting,
  JOB_FORMAT,
  type JobData,
  type JobRuntime,
  jobKey,
  parryVersion,
  portableTask,
} from './job.js';
import { jobLabel } from './label.js';
import { connectRedis, KEY_PREFIX, QUEUE_NAME, redactUrl, waitForRedis } from './redis.js';

export interface QueueExecutorOptions {
  /** `redis://HOST:PORT`. */
  url: string;
  /** Runs of a job that throws before it fails (default 3). */
  attempts?: number;
  /** First retry delay in ms, doubled at each further retry (default 1000). */
  backoffMs?: number;
  /** Input fields holding paths to send by content (default `['modelDir']`). */
  assetKeys?: readonly string[];
  /** Files sent along with a file asset when they sit next to it (default `['parry.json']`). */
  sidecars?: readonly string[];
  /** What `size` reports: the jobs expected to run at once (default 16). */
  size?: number;
  /** Every change of the executor's counts, for one progress bar over all its jobs. */
  onProgress?: (p: QueueProgress) => void;
  /** How often open jobs' states are checked besides the event stream (default 2000 ms). */
  pollMs?: number;
  /** Key prefix in Redis (default `parry`). */
  prefix?: string;
  /** Backend the workers must run (default: $PARRY_BACKEND or wasm, as a local pool). */
  backend?: string;
}

export interface QueueProgress {
  /** Distinct jobs submitted, finished (with their result), failed. */
  total: number;
  done: number;
  failed: number;
  /** Finished jobs plus the shares running jobs reported. */
  progress: number;
  /** Label of the job that changed last. */
  label?: string;
}

/** Which job of a `map` call: its index (from 0) among `total`. */
export interface JobPart {
  index: number;
  total: number;
}

/** A job that failed after its attempts, or that a worker refused. */
export class JobFailedError extends ParryError {
  constructor(
    readonly jobId: string,
    readonly label: string,
    readonly attempts: number,
    readonly reason: string,
    /** Its place in the `map` call that submitted it first (absent for `run`). */
    readonly part?: JobPart,
  ) {
    const refused = /\brefused\b/.test(reason);
    super(
      'INTERNAL',
      refused
        ? `queue: ${label}: ${reason.replace(/^queue: /, '')}`
        : `queue: ${label} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${reason}`,
    );
    this.name = 'ParryError';
  }

  /** A worker refused the job (it is not retried). */
  get refused(): boolean {
    return /\brefused\b/.test(this.reason);
  }
}

/** One job's outcome in `mapSettled`. */
export type Settled<O> = { ok: true; value: O } | { ok: false; error: JobFailedError };

interface OpenJob {
  id: string;
  label: string;
  part?: JobPart;
  data: JobData;
  /** Settles with the decoded output, or a JobFailedError. */
  result: Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  state: 'open' | 'done' | 'failed';
  /** Added to the queue (until then its state in Redis may be an earlier run's). */
  enqueued: boolean;
  /** Uploads of the files it reads. */
  assets: [AssetRef, () => Promise<void>][];
  fraction: number;
  listeners: Set<(fraction: number) => void>;
}

export class QueueExecutor implements Executor {
  readonly size: number;
  readonly url: string;
  private readonly redis: Redis;
  private readonly queue: Queue;
  private readonly events: QueueEvents;
  /** The events' own connection (BullMQ leaves a connection it was given open). */
  private readonly eventsRedis: Redis;
  private readonly jobs = new Map<string, OpenJob>();
  private readonly uploads = new Map<string, Promise<void>>();
  private readonly hasher: AssetHasher;
  private readonly prefix: string;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly assetKeys: readonly string[];
  private readonly timer: NodeJS.Timeout;
  private readonly failed: JobFailedError[] = [];
  private readonly counts = { done: 0, failed: 0, progress: 0 };
  private readonly runtime: JobRuntime;
  private polling = false;
  private pollCursor = 0;
  private closed = false;

  constructor(private readonly options: QueueExecutorOptions) {
    const { attempts = 3, backoffMs = 1000, size = 16 } = options;
    check(
      Number.isInteger(attempts) && attempts >= 1,
      () => `queue: attempts must be an integer >= 1, got ${attempts}`,
      'BAD_OPTION',
    );
    check(
      Number.isFinite(backoffMs) && backoffMs >= 0,
      () => `queue: backoffMs must be >= 0, got ${backoffMs}`,
      'BAD_OPTION',
    );
    this.url = options.url;
    this.runtime = { backend: resolveBackendName(options.backend), engine: engineSetting() };
    this.size = size;
    this.attempts = attempts;
    this.backoffMs = backoffMs;
    this.assetKeys = options.assetKeys ?? ['modelDir'];
    this.prefix = options.prefix ?? KEY_PREFIX;
    this.hasher = new AssetHasher(options.sidecars);
    this.redis = connectRedis(options.url, 'parry-coordinator');
    const connection = this.redis;
    this.queue = new Queue(QUEUE_NAME, { connection, prefix: this.prefix });
    this.eventsRedis = connectRedis(options.url, 'parry-coordinator-events');
    this.events = new QueueEvents(QUEUE_NAME, {
      connection: this.eventsRedis,
      prefix: this.prefix,
    });
    this.queue.on('error', () => {}); // reconnects by itself; a lost job is found by polling
    this.events.on('error', () => {});
    this.events.on('completed', ({ jobId, returnvalue }) => this.completed(jobId, returnvalue));
    this.events.on('failed', ({ jobId }) => void this.check(jobId));
    this.events.on('progress', ({ jobId, data }) => this.progressed(jobId, data));
    this.timer = setInterval(() => void this.poll(), options.pollMs ?? 2000);
    this.timer.unref();
  }

  /** Resolves once Redis answers and the queue is set up; refuses a Redis that evicts keys. */
  async ready(): Promise<void> {
    await waitForRedis(this.redis, this.url);
    const policy = await this.redis.config('GET', 'maxmemory-policy').catch(() => null);
    const value = Array.isArray(policy) ? policy[1] : undefined;
    if (typeof value === 'string' && value !== 'noeviction') {
      throw new ParryError(
        'BAD_OPTION',
        `queue: Redis at ${redactUrl(this.url)} has maxmemory-policy ${value}: it could evict jobs ` +
          'and results; set maxmemory-policy noeviction',
      );
    }
    await Promise.all([this.queue.waitUntilReady(), this.events.waitUntilReady()]);
  }

  run<T extends TaskSpec>(
    task: T,
    input: InputOf<T>,
    options: RunOptions = {},
  ): Promise<OutputOf<T>> {
    const job = this.submit(task, input, options.seed, jobLabel() ?? describeTask(task));
    if (options.onProgress) job.listeners.add(options.onProgress);
    return job.result as Promise<OutputOf<T>>;
  }

  /**
   * One job per input, results in input order; rejects with the first failure in input order,
   * once every job of the call has finished or failed.
   */
  async map<T extends TaskSpec>(
    task: T,
    inputs: readonly InputOf<T>[],
    options: MapOptions<InputOf<T>> = {},
  ): Promise<OutputOf<T>[]> {
    const settled = await this.mapSettled(task, inputs, options);
    const failed = settled.find((s) => !s.ok);
    if (failed && !failed.ok) throw failed.error;
    return settled.map((s) => (s as { value: OutputOf<T> }).value);
  }

  /** `map` that reports each job's outcome instead of rejecting. */
  async mapSettled<T extends TaskSpec>(
    task: T,
    inputs: readonly InputOf<T>[],
    options: MapOptions<InputOf<T>> = {},
  ): Promise<Settled<OutputOf<T>>[]> {
    const { rng, onProgress, signal } = options;
    signal?.throwIfAborted();
    const label = jobLabel() ?? describeTask(task);
    const total = inputs.length;
    const jobs = inputs.map((input, i) => {
      const seed = rng?.nextUint32();
      return this.submit(
        task,
        input,
        seed,
        total === 1 ? label : `${label} · job ${i + 1}/${total}`,
        { index: i, total },
      );
    });
    const report = () => {
      let done = 0;
      for (const j of jobs) done += j.state === 'open' ? j.fraction : 1;
      onProgress?.(done, total);
    };
    const listener = () => report();
    if (onProgress) for (const j of jobs) j.listeners.add(listener);
    const outcomes = Promise.all(
      jobs.map((j) =>
        j.result.then(
          (value): Settled<OutputOf<T>> => ({ ok: true, value: value as OutputOf<T> }),
          (error): Settled<OutputOf<T>> => {
            if (error instanceof JobFailedError) return { ok: false, error };
            throw error;
          },
        ),
      ),
    );
    try {
      if (signal === undefined) return await outcomes;
      let onAbort!: () => void;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () => reject(signal.reason);
        signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        return await Promise.race([outcomes, aborted]);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
    } finally {
      for (const j of jobs) j.listeners.delete(listener);
    }
  }

  /** Jobs whose result this executor has gathered. */
  gathered(): string[] {
    return [...this.jobs.values()].filter((j) => j.state === 'done').map((j) => j.id);
  }

  /** Jobs that failed, with their errors. */
  failures(): JobFailedError[] {
    return this.failed;
  }

  /** Deletes the gathered jobs and their results from Redis (once the caller has stored them). */
  async removeGathered(): Promise<number> {
    let removed = 0;
    for (const id of this.gathered()) removed += await this.queue.remove(id);
    return removed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    const closing = new ParryError('INTERNAL', 'queue: closed before the job finished');
    for (const j of this.jobs.values()) if (j.state === 'open') j.reject(closing);
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.redis.disconnect();
    this.eventsRedis.disconnect();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The open (or settled) job for this content, adding it to the queue the first time. */
  private submit(
    task: TaskSpec,
    input: unknown,
    seed: number | undefined,
    label: string,
    part?: JobPart,
  ): OpenJob {
    if (this.closed) throw new ParryError('INTERNAL', 'queue: the executor is closed');
    check(
      seed === undefined || (Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff),
      () => `queue: seed must be an integer in [0, 2^32), got ${seed}`,
      'BAD_OPTION',
    );
    const { encoded, assets } = this.encode(input);
    const base = {
      parry: parryVersion(),
      task: portableTask(task),
      runtime: this.runtime,
      seed,
      input: encoded,
    };
    const id = jobKey(base);
    const known = this.jobs.get(id);
    if (known) return known;
    const data: JobData = { format: JOB_FORMAT, ...base, label };
    let resolve!: (v: unknown) => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<unknown>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    result.catch(() => {}); // observed by map/run; a prefetch may never look
    const job: OpenJob = {
      id,
      label,
      ...(part ? { part } : {}),
      data,
      result,
      resolve,
      reject,
      state: 'open',
      enqueued: false,
      assets,
      fraction: 0,
      listeners: new Set(),
    };
    this.jobs.set(id, job);
    this.report(job);
    this.enqueue(job).catch((e) => this.settle(job, e));
    return job;
  }

  /** The input as a job carries it: encoded, with asset paths replaced by content references. */
  private encode(input: unknown): { encoded: unknown; assets: [AssetRef, () => Promise<void>][] } {
    const encoded = encodeValue(input, 'input') as Record<string, unknown>;
    const assets: [AssetRef, () => Promise<void>][] = [];
    if (encoded === null || typeof encoded !== 'object' || Array.isArray(encoded)) {
      return { encoded, assets };
    }
    for (const key of this.assetKeys) {
      const p = encoded[key];
      if (typeof p !== 'string') continue;
      const { ref, set } = this.hasher.describe(p);
      encoded[key] = ref;
      assets.push([ref, () => uploadAsset(this.redis, this.prefix, ref, set)]);
    }
    return { encoded, assets };
  }

  /** Uploads the job's files (once per run, or again with `again`) and adds the job. */
  private async enqueue(job: OpenJob, again = false): Promise<void> {
    for (const [ref, upload] of job.assets) {
      let done = again ? undefined : this.uploads.get(ref.$asset);
      if (done === undefined) {
        done = upload();
        this.uploads.set(ref.$asset, done);
        done.catch(() => this.uploads.delete(ref.$asset));
      }
      await done;
    }
    await this.queue.add(
      typeof job.data.task === 'string' ? job.data.task : job.data.task.name,
      job.data,
      {
        jobId: job.id,
        attempts: this.attempts,
        backoff: { type: 'exponential', delay: this.backoffMs },
        removeOnComplete: false,
        removeOnFail: false,
      },
    );
    // The job may have existed already (an earlier run): finished, or failed and worth a retry.
    await this.check(job.id, true);
    job.enqueued = true;
  }

  /** Reads a job's state from Redis and settles it if it is finished; `retryFailed` reruns a failure. */
  private async check(id: string, retryFailed = false): Promise<void> {
    const job = this.jobs.get(id);
    if (job === undefined || job.state !== 'open' || (!job.enqueued && !retryFailed)) return;
    const state = await this.queue.getJobState(id);
    if (state === 'completed' || state === 'failed') {
      const stored = (await this.queue.getJob(id)) as Job | undefined;
      if (stored === undefined) return;
      if (state === 'completed') this.completed(id, stored.returnvalue);
      else if (retryFailed) await stored.retry('failed', { resetAttemptsMade: true });
      else
        this.settle(
          job,
          new JobFailedError(id, job.label, stored.attemptsMade, stored.failedReason, job.part),
        );
    } else if (state === 'unknown' && job.enqueued) {
      job.enqueued = false;
      await this.enqueue(job, true); // Redis lost it (restarted without its data): add it again
    }
  }

  /** Checks a slice of the open jobs (all of them over a few ticks). */
  private async poll(): Promise<void> {
    if (this.polling || this.closed) return;
    this.polling = true;
    try {
      const open = [...this.jobs.values()].filter((j) => j.state === 'open');
      const slice = 200;
      if (this.pollCursor >= open.length) this.pollCursor = 0;
      const batch = open.slice(this.pollCursor, this.pollCursor + slice);
      this.pollCursor += slice;
      for (const j of batch) await this.check(j.id).catch(() => {});
    } finally {
      this.polling = false;
    }
  }

  private completed(id: string, returnvalue: unknown): void {
    const job = this.jobs.get(id);
    if (job === undefined || job.state !== 'open') return;
    let value: unknown;
    try {
      value = decodeValue(returnvalue); // BullMQ has parsed the JSON already
    } catch (e) {
      this.settle(
        job,
        new JobFailedError(
          id,
          job.label,
          0,
          `unreadable result: ${(e as Error).message}`,
          job.part,
        ),
      );
      return;
    }
    const before = job.fraction;
    job.state = 'done';
    job.fraction = 1;
    job.resolve(value);
    this.report(job, before);
    for (const l of job.listeners) l(1);
  }

  private settle(job: OpenJob, error: unknown): void {
    if (job.state !== 'open') return;
    job.state = 'failed';
    if (error instanceof JobFailedError) this.failed.push(error);
    job.reject(error);
    this.report(job, job.fraction);
    for (const l of job.listeners) l(1);
  }

  private progressed(id: string, data: unknown): void {
    const job = this.jobs.get(id);
    if (job === undefined || job.state !== 'open' || typeof data !== 'number') return;
    const before = job.fraction;
    job.fraction = Math.min(1, Math.max(0, data));
    this.report(job, before);
    for (const l of job.listeners) l(job.fraction);
  }

  /** Tells `onProgress`; `before` is the job's share before the change (counts kept running). */
  private report(changed: OpenJob, before = 0): void {
    const c = this.counts;
    if (changed.state === 'done') c.done++;
    else if (changed.state === 'failed') c.failed++;
    c.progress += (changed.state === 'open' ? changed.fraction : 1) - before;
    this.options.onProgress?.({ total: this.jobs.size, ...c, label: changed.label });
  }
}
