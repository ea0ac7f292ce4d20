/**
 * `--queue URL` and `--attempts N`, shared by the commands whose batches can run as jobs on
 * `parry worker` processes (evaluate, attack, certify --method smoothing): the options, the
 * coordinator's `QueueExecutor` under one progress bar over the queue's jobs, and its end.
 */
import type { Command } from 'commander';
import { JobFailedError, QueueExecutor, type QueueProgress } from '../engine/queue/executor.js';
import { checkRedisUrl, redactUrl } from '../engine/queue/redis.js';
import { ParryError } from '../errors.js';
import { badOption, log, parsePositiveInt } from './common.js';
import { progressBar } from './progress.js';

export interface QueueFlags {
  queue?: string;
  attempts?: number;
}

/** Adds `--queue` and `--attempts`; `what` says which work becomes jobs. */
export function addQueueOptions(cmd: Command, what: string): Command {
  return cmd
    .option(
      '--queue <url>',
      `run ${what} as jobs on \`parry worker\` processes through this Redis (redis://HOST:PORT)`,
    )
    .option(
      '--attempts <n>',
      'with --queue: runs of a failing job before it fails (default 3)',
      parsePositiveInt,
    );
}

/**
 * Checks the flags before any work: a well-formed URL, `--attempts` only with `--queue`, and,
 * for a command whose every job goes to the queue, no `--workers` beside it (`workers`: its value).
 */
export function checkQueueFlags(command: string, flags: QueueFlags, workers?: number): void {
  if (flags.queue === undefined) {
    if (flags.attempts !== undefined) throw badOption(`${command}: --attempts needs --queue URL`);
    return;
  }
  checkRedisUrl(flags.queue, '--queue');
  if (workers !== undefined) {
    throw badOption(
      `${command}: --workers ${workers} has no effect with --queue: the jobs run on the queue's ` +
        'workers (set their threads with `parry worker --concurrency N`)',
    );
  }
}

/** A coordinator's queue: the executor its jobs go to, and the bar that shows them. */
export interface Coordinator {
  executor: QueueExecutor;
  /** Stops the progress bar (before the command prints). */
  stopBar(): void;
  /**
   * Stops the bar and disconnects. With `gathered` (every result is stored where the command
   * writes its output) the finished jobs' results are deleted from Redis; otherwise they stay, so
   * a rerun of the same work finds them.
   */
  close(gathered: boolean): Promise<void>;
}

/**
 * Connects to the queue at `url` and waits for Redis, logging where the jobs go; throws (having
 * disconnected) when Redis does not answer or could evict jobs.
 */
export async function openQueue(
  command: string,
  url: string,
  attempts: number | undefined,
  backend: string,
): Promise<Coordinator> {
  const bar = queueBar();
  const executor = new QueueExecutor({ url, attempts, backend, onProgress: bar.update });
  let closed = false;
  const coordinator: Coordinator = {
    executor,
    stopBar: () => bar.stop(),
    close: async (gathered) => {
      bar.stop();
      if (closed) return;
      closed = true;
      if (gathered && executor.failures().length === 0) await executor.removeGathered();
      await executor.close();
    },
  };
  try {
    await executor.ready();
  } catch (e) {
    await coordinator.close(false);
    throw e;
  }
  log(`${command}: jobs go to the queue at ${redactUrl(url)}`);
  return coordinator;
}

/**
 * A job of a command without partial results failed: the command's error, saying that the
 * finished jobs wait in Redis, so running the same command again runs only the failed ones.
 */
export function jobFailure(command: string, e: unknown): unknown {
  if (!(e instanceof JobFailedError)) return e;
  return new ParryError(
    'INTERNAL',
    `${command}: ${e.message}; the finished jobs' results stay in Redis: fix the cause and run ` +
      'the same command again (only the failed jobs run again)',
    { cause: e },
  );
}

/** One bar over every job of the queue: finished (plus running shares) out of submitted. */
function queueBar() {
  const bar = progressBar('queue |{bar}| {value}/{total} jobs | failed {failed} | {label}');
  let started = false;
  return {
    update: (p: QueueProgress) => {
      const payload = { failed: p.failed, label: p.label ?? '' };
      if (!started) {
        started = true;
        bar.start(p.total, 0, payload);
      }
      bar.setTotal(p.total);
      bar.update(Math.round(p.progress * 100) / 100, payload);
    },
    stop: () => bar.stop(),
  };
}
