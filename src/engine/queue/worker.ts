/**
 * The worker side of the job queue (`parry worker`): takes jobs from Redis and runs each on a
 * local pool of worker threads (one per concurrent job, so this thread stays free to renew the
 * jobs' locks), reporting progress with `job.updateProgress`.
 *
 * A job is refused — failed at once, without retries, with a message saying why — when it was
 * made by another parry version, names a task outside parry's package, or needs a model whose
 * content this worker cannot get with the right hash (assets.ts). Any other error is the task's:
 * BullMQ retries it with backoff.
 *
 * `stop('finish')` takes no new job and waits for the running ones; `stop('return')` puts the
 * running ones back in the queue at once (another worker takes them from the start).
 */
import { hostname } from 'node:os';
import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { check, isParryError, ParryError } from '../../errors.js';
import { ThreadPool } from '../pool.js';
import { AssetHasher, resolveAsset } from './assets.js';
import { decodeValue, encodeValue } from './codec.js';
import {
  assetsOf,
  engineSetting,
  JOB_FORMAT,
  type JobData,
  localTask,
  parryVersion,
} from './job.js';
import { connectRedis, KEY_PREFIX, QUEUE_NAME, waitForRedis } from './redis.js';

export interface QueueWorkerOptions {
  url: string;
  /** Jobs at once, each on its own thread (default 1). */
  concurrency?: number;
  /** tfjs backend of the threads (default: $PARRY_BACKEND or wasm). */
  backend?: string;
  /** Where models fetched from Redis are kept, one folder per content hash. */
  cacheDir: string;
  /** Read a model at the coordinator's path when it is here with the same content (default true). */
  sharedPaths?: boolean;
  /** A job's lock lasts this long unless renewed (ms, default 30000). */
  lockDuration?: number;
  /** How often this worker looks for jobs whose worker died (ms, default 30000). */
  stalledInterval?: number;
  /** Times a job may lose its worker before it fails (default 2). */
  maxStalledCount?: number;
  prefix?: string;
  onEvent?: (event: WorkerEvent) => void;
}

export type WorkerEvent =
  | { type: 'start'; id: string; label: string }
  | { type: 'done'; id: string; label: string; seconds: number }
  | { type: 'failed'; id: string; label: string; message: string; attempt: number; final: boolean }
  | { type: 'returned'; id: string; label: string }
  | { type: 'error'; message: string };

/** Reported progress reaches Redis at most this often per job. */
const PROGRESS_INTERVAL_MS = 500;

export class QueueWorker {
  private readonly returning = new Set<AbortController>();
  private stopping?: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    private readonly pool: ThreadPool,
    private readonly redis: Redis,
  ) {}

  /** Connects, starts the threads, and starts taking jobs. */
  static async start(options: QueueWorkerOptions): Promise<QueueWorker> {
    const concurrency = options.concurrency ?? 1;
    check(
      Number.isInteger(concurrency) && concurrency >= 1,
      () => `worker: concurrency must be an integer >= 1, got ${concurrency}`,
      'BAD_OPTION',
    );
    const redis = connectRedis(options.url, `parry-worker-${hostname()}-${process.pid}`);
    const pool = new ThreadPool({ workers: concurrency, backend: options.backend });
    try {
      await waitForRedis(redis, options.url);
      await pool.ready();
    } catch (e) {
      redis.disconnect();
      await pool.close();
      throw e;
    }
    const prefix = options.prefix ?? KEY_PREFIX;
    const hasher = new AssetHasher();
    let self: QueueWorker | undefined;
    const worker = new Worker(
      QUEUE_NAME,
      (job: Job, token?: string) => self!.process(job, token, options, redis, prefix, hasher),
      {
        connection: redis,
        prefix,
        concurrency,
        name: `${hostname()}:${process.pid}`,
        lockDuration: options.lockDuration ?? 30_000,
        stalledInterval: options.stalledInterval ?? 30_000,
        maxStalledCount: options.maxStalledCount ?? 2,
        autorun: false,
      },
    );
    self = new QueueWorker(worker, pool, redis);
    const emit = options.onEvent ?? (() => {});
    worker.on('error', (e) => emit({ type: 'error', message: e.message }));
    worker.on('failed', (job, e) => {
      if (job === undefined || e instanceof WaitingError || e.name === 'WaitingError') return;
      const attempts = job.opts.attempts ?? 1;
      emit({
        type: 'failed',
        id: String(job.id),
        label: (job.data as JobData).label ?? String(job.id),
        message: e.message,
        attempt: job.attemptsMade,
        final: e instanceof UnrecoverableError || job.attemptsMade >= attempts,
      });
    });
    void worker.run().catch((e) => emit({ type: 'error', message: (e as Error).message }));
    await worker.waitUntilReady();
    return self;
  }

  /** Stops taking jobs; `finish` waits for the running ones, `return` puts them back. */
  stop(mode: 'finish' | 'return' = 'finish'): Promise<void> {
    if (mode === 'return') for (const c of this.returning) c.abort();
    this.stopping ??= (async () => {
      await this.worker.close();
      await this.pool.close();
      this.redis.disconnect();
    })();
    return this.stopping;
  }

  private async process(
    job: Job,
    token: string | undefined,
    options: QueueWorkerOptions,
    redis: Redis,
    prefix: string,
    hasher: AssetHasher,
  ): Promise<unknown> {
    const emit = options.onEvent ?? (() => {});
    const data = job.data as JobData;
    const id = String(job.id);
    const label = typeof data.label === 'string' ? data.label : id;
    const started = performance.now();
    emit({ type: 'start', id, label });
    const input = await refusing(() => this.prepare(data, redis, prefix, hasher, options));
    let last = 0;
    const onProgress = (fraction: number) => {
      const now = performance.now();
      if (now - last < PROGRESS_INTERVAL_MS) return;
      last = now;
      job.updateProgress(fraction).catch(() => {});
    };
    const controller = new AbortController();
    this.returning.add(controller);
    try {
      const running = this.pool.run(input.task, input.value as never, {
        seed: data.seed,
        onProgress,
      });
      running.catch(() => {}); // abandoned when the job is returned
      const returned = new Promise<never>((_, reject) => {
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason));
      });
      let output: unknown;
      try {
        output = await Promise.race([running, returned]);
      } catch (e) {
        if (!controller.signal.aborted) throw e;
        await job.moveToWait(token);
        emit({ type: 'returned', id, label });
        throw new WaitingError();
      }
      emit({ type: 'done', id, label, seconds: (performance.now() - started) / 1000 });
      return encodeValue(output, 'output');
    } finally {
      this.returning.delete(controller);
    }
  }

  /** The job's task and decoded input with its models at local paths; throws if refused. */
  private async prepare(
    data: JobData,
    redis: Redis,
    prefix: string,
    hasher: AssetHasher,
    options: QueueWorkerOptions,
  ) {
    if (data.format !== JOB_FORMAT || data.parry !== parryVersion()) {
      throw new ParryError(
        'BAD_INPUT',
        `queue: refused: the job was made by parry ${data.parry ?? '?'} (job format ${data.format}), ` +
          `this worker runs parry ${parryVersion()} (job format ${JOB_FORMAT}); ` +
          'run the same parry version on the coordinator and every worker',
      );
    }
    const want = data.runtime ?? { backend: '?', engine: '?' };
    const have = { backend: this.pool.backend, engine: engineSetting() };
    if (want.backend !== have.backend || want.engine !== have.engine) {
      throw new ParryError(
        'BAD_INPUT',
        `queue: refused: the job asks for backend ${want.backend} and engine ${want.engine}, ` +
          `this worker runs backend ${have.backend} and engine ${have.engine} (results would differ ` +
          `in the last digits); start it with --backend ${want.backend} --engine ${want.engine}`,
      );
    }
    const task = localTask(data.task);
    const value = decodeValue(data.input) as Record<string, unknown>;
    for (const [key, ref] of assetsOf(data.input)) {
      value[key] = await resolveAsset(redis, prefix, ref, hasher, {
        cacheDir: options.cacheDir,
        sharedPaths: options.sharedPaths,
      });
    }
    return { task, value };
  }
}

/** Runs `fn`; a refusal (a ParryError saying 'refused') becomes a failure BullMQ does not retry. */
async function refusing<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (isParryError(e) && /\brefused\b/.test(e.message)) throw new UnrecoverableError(e.message);
    throw e;
  }
}
