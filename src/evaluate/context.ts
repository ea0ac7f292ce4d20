/**
 * What every stage of an evaluation shares: the config, the examples, the resume store, the pool,
 * and `cell`, which runs one unit of work (or takes it from partial.jsonl) with its own seed and
 * progress reporting.
 */
import type { Dataset } from '../data/index.js';
import type { WorkerPool } from '../engine/pool.js';
import { JobFailedError, type JobPart } from '../engine/queue/executor.js';
import { withJobLabel } from '../engine/queue/label.js';
import { Rng } from '../engine/rng.js';
import type { EvaluateConfig } from './config.js';
import { type CellKey, type FailedCell, keyString, type PartialStore } from './partial.js';

export interface StageInfo extends CellKey {
  /** e.g. `fmnist-cnn-small: pgd linf 0.1`. */
  label: string;
  /** Units of progress (examples). */
  total: number;
  /** Taken from partial.jsonl, not computed. */
  cached: boolean;
}

/** Returned by `onStage`: progress of the stage, and its end. */
export interface StageHandle {
  progress?(done: number, total: number): void;
  end?(): void;
}

export interface EvalContext {
  config: EvaluateConfig;
  data: Dataset & { classNames: string[] };
  store: PartialStore;
  /** What runs the attack and certificate batches: threads here, or a job queue. */
  pool?: WorkerPool;
  onStage?: (stage: StageInfo) => StageHandle | undefined;
  signal?: AbortSignal;
  /** Notes for results.json (deduplicated when written). */
  notes: string[];
  /** Cells left out because a job of theirs failed on the job queue. */
  failed: FailedCell[];
}

/**
 * The seed of one cell: a function of the config seed and the cell's key only, so a cell gets the
 * same randomness whether it runs first, after others, or in a resumed run.
 */
export function cellSeed(seed: number, key: CellKey): number {
  let h = 0x811c9dc5;
  for (const ch of keyString(key)) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return new Rng((h ^ seed) >>> 0).nextUint32();
}

/**
 * Runs `compute` for `key` and records the result, or returns the recorded one. Jobs that
 * `compute` sends to a job queue carry `label` (the queue's messages and progress name the cell).
 */
export async function cell<T>(
  ctx: EvalContext,
  key: CellKey,
  label: string,
  total: number,
  compute: (seed: number, progress: (done: number, total: number) => void) => Promise<T>,
): Promise<T> {
  const recorded = ctx.store.get<T>(key);
  if (recorded !== undefined) {
    ctx.onStage?.({ ...key, label, total, cached: true })?.end?.();
    return recorded;
  }
  ctx.signal?.throwIfAborted();
  const handle = ctx.onStage?.({ ...key, label, total, cached: false });
  try {
    const value = await withJobLabel(label, () =>
      compute(cellSeed(ctx.config.seed, key), (done, all) => handle?.progress?.(done, all)),
    );
    handle?.progress?.(total, total);
    return await ctx.store.put(key, value);
  } finally {
    handle?.end?.();
  }
}

/** What one job of a cell covers, for failure notes (`batch 2/4 (examples 5-9)`). */
export type DescribeJob = (part: JobPart) => string;

/** The jobs of a cell over `n` examples are its batches of `batchSize`, in order. */
export const batchJobs =
  (batchSize: number, n: number): DescribeJob =>
  ({ index, total }) => {
    const first = index * batchSize;
    return `batch ${index + 1}/${total} (examples ${first}-${Math.min(first + batchSize, n) - 1})`;
  };

/** One job per example, in order. */
export const exampleJobs: DescribeJob = ({ index, total }) =>
  `the job of example ${index} (${index + 1}/${total})`;

/**
 * `cell`, or undefined when a job of the cell failed on the job queue after its attempts (or a
 * worker refused it): the cell is then left out of the results, named in `ctx.failed` and in a
 * note, and not recorded, so a resumed run computes it again. Any other error is thrown.
 */
export async function cellOrFailure<T>(
  ctx: EvalContext,
  key: CellKey,
  label: string,
  total: number,
  describe: DescribeJob,
  compute: (seed: number, progress: (done: number, total: number) => void) => Promise<T>,
): Promise<T | undefined> {
  try {
    return await cell(ctx, key, label, total, compute);
  } catch (e) {
    if (!(e instanceof JobFailedError)) throw e;
    const job = e.part ? describe(e.part) : 'a job';
    const error = e.reason.replace(/^queue: (refused: )?/, '');
    const how = e.refused
      ? 'was refused by a worker'
      : `failed after ${e.attempts} attempt${e.attempts === 1 ? '' : 's'}`;
    ctx.failed.push({
      ...key,
      label,
      job,
      jobId: e.jobId,
      attempts: e.attempts,
      error,
      refused: e.refused,
    });
    ctx.notes.push(`${label}: left out: ${job} ${how}: ${error}`);
    return undefined;
  }
}

/** The middle budget of a grid (the upper one of two). */
export const middle = (grid: readonly number[]) => grid[grid.length >> 1];
