/**
 * `parry worker --redis redis://HOST:PORT [--concurrency N]`: runs the jobs of a parry job queue
 * (what `parry evaluate`, `parry attack` and `parry certify --method smoothing` submit with
 * `--queue`) on this machine, each on its own thread, until stopped.
 * The first SIGINT/SIGTERM lets the running jobs finish and takes no new one; a second puts the
 * running jobs back in the queue and exits at once.
 */
import { homedir } from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { resolveBackendName } from '../engine/backend.js';
import { parryVersion } from '../engine/queue/job.js';
import { checkRedisUrl, redactUrl } from '../engine/queue/redis.js';
import { QueueWorker, type WorkerEvent } from '../engine/queue/worker.js';
import { badOption, engineOption, log, parsePositiveInt } from './common.js';

interface WorkerOptions {
  redis?: string;
  concurrency: number;
  backend?: string;
  engine?: string;
  cache?: string;
  sharedPaths: boolean;
  lockDuration?: number;
  stalledInterval?: number;
  verbose?: boolean;
}

export function workerCommand(): Command {
  return new Command('worker')
    .description(
      'run the jobs of a parry job queue on Redis (submitted by `parry evaluate`, `parry attack` or `parry certify --method smoothing` with `--queue`) here, ' +
        'until SIGINT/SIGTERM (once: finish the running jobs; twice: return them to the queue)',
    )
    .option('--redis <url>', "the queue's Redis, redis://HOST:PORT")
    .option('--concurrency <n>', 'jobs at once, each on its own thread', parsePositiveInt, 1)
    .addOption(
      new Option(
        '--backend <name>',
        'tfjs backend: wasm (default), cpu, or any registered one (must match the coordinator)',
      ).env('PARRY_BACKEND'),
    )
    .addOption(engineOption())
    .option(
      '--cache <dir>',
      'where models fetched from Redis are kept (default $XDG_CACHE_HOME/parry/assets, else ~/.cache/parry/assets)',
    )
    .option(
      '--no-shared-paths',
      "fetch every model from Redis, even when the coordinator's path exists here",
    )
    .option(
      '--lock-duration <ms>',
      'a job goes back to the queue this long after its worker stopped renewing its lock (default 30000)',
      parsePositiveInt,
    )
    .option(
      '--stalled-interval <ms>',
      'how often to look for jobs whose worker died (default 30000)',
      parsePositiveInt,
    )
    .option('--verbose', 'print a line per job started and finished, and stack traces on errors')
    .action((opts: WorkerOptions) => runWorker(opts));
}

async function runWorker(opts: WorkerOptions): Promise<void> {
  if (opts.redis === undefined) throw badOption('worker: --redis redis://HOST:PORT is required');
  checkRedisUrl(opts.redis);
  process.env.PARRY_ENGINE = opts.engine ?? 'auto';
  const backend = resolveBackendName(opts.backend);
  const cacheDir = path.resolve(
    opts.cache ??
      path.join(process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'parry', 'assets'),
  );
  let jobs = 0;
  const worker = await QueueWorker.start({
    url: opts.redis,
    concurrency: opts.concurrency,
    backend,
    cacheDir,
    sharedPaths: opts.sharedPaths,
    lockDuration: opts.lockDuration,
    stalledInterval: opts.stalledInterval,
    onEvent: (e) => {
      if (e.type === 'done') jobs++;
      report(e, opts.verbose === true);
    },
  });
  log(
    `worker: ready: parry ${parryVersion()}, ${opts.concurrency} thread${opts.concurrency === 1 ? '' : 's'}, ` +
      `backend ${backend}, engine ${process.env.PARRY_ENGINE}, queue ${redactUrl(opts.redis)}`,
  );
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (signal: string) => {
      signals++;
      if (signals === 1) {
        log(
          `worker: ${signal}: finishing the running jobs (${signal} again returns them to the queue)`,
        );
        void worker.stop('finish').then(resolve);
      } else {
        log(`worker: ${signal}: returning the running jobs to the queue`);
        void worker.stop('return').then(resolve);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  log(`worker: stopped after ${jobs} job${jobs === 1 ? '' : 's'}`);
}

let lastError = '';

function report(e: WorkerEvent, verbose: boolean): void {
  const id = 'id' in e ? e.id.slice(0, 12) : '';
  if (e.type === 'start' && verbose) log(`worker: start ${id} ${e.label}`);
  else if (e.type === 'done' && verbose)
    log(`worker: done ${id} ${e.label} in ${e.seconds.toFixed(2)} s`);
  else if (e.type === 'returned') log(`worker: returned ${id} ${e.label} to the queue`);
  else if (e.type === 'failed') {
    const what = e.final ? 'failed' : `failed (attempt ${e.attempt}, will be retried)`;
    log(`worker: ${id} ${e.label} ${what}: ${e.message}`);
  } else if (e.type === 'error' && e.message !== lastError) {
    lastError = e.message;
    log(`worker: redis: ${e.message}`);
  }
}
