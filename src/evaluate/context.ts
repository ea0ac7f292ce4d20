/**
 * What every stage of an evaluation shares: the config, the examples, the resume store, the pool,
 * and `cell`, which runs one unit of work (or takes it from partial.jsonl) with its own seed and
 * progress reporting.
 */
import type { Dataset } from '../data/index.js';
import type { WorkerPool } from '../engine/pool.js';
import { withJobLabel } from '../engine/queue/label.js';
import { Rng } from '../engine/rng.js';
import type { EvaluateConfig } from './config.js';
import { type CellKey, keyString, type PartialStore } from './partial.js';

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

/** The middle budget of a grid (the upper one of two). */
export const middle = (grid: readonly number[]) => grid[grid.length >> 1];
