/**
 * Running an evaluation's batches: in this thread, one after the other, or over a worker pool,
 * with progress in whole examples (the finished batches plus the finished share of the running
 * ones). Shared by the attack and the defense evaluations.
 */
import type { WorkerPool } from '../engine/pool.js';
import type { ModuleTask } from '../engine/tasks.js';

export interface BatchRunOptions {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Runs `run` on each batch of `plan` in order; `n` examples in all. */
export async function runBatchesInThread<B extends { shape: number[] }, O>(
  plan: readonly B[],
  n: number,
  opts: BatchRunOptions,
  run: (batch: B, progress?: (fraction: number) => void) => Promise<O>,
): Promise<O[]> {
  const outputs: O[] = [];
  let done = 0;
  for (const batch of plan) {
    opts.signal?.throwIfAborted();
    const m = batch.shape[0];
    const progress = opts.onProgress
      ? (f: number) => opts.onProgress?.(done + Math.floor(f * m), n)
      : undefined;
    outputs.push(await run(batch, progress));
    done += m;
    opts.onProgress?.(done, n);
  }
  return outputs;
}

/**
 * Runs `task` on each batch of `plan` over `pool`, each job given the batch (with its own copy of
 * `x`, moved to the worker: a view would clone the whole data set's buffer) plus `target`, what
 * the workers need to rebuild the model; results in plan order, `n` examples in all.
 */
export async function runBatchesPooled<B extends { x: Float32Array }, T extends object, O>(
  pool: WorkerPool,
  task: ModuleTask<B & T, O>,
  plan: readonly B[],
  target: T,
  n: number,
  opts: BatchRunOptions,
): Promise<O[]> {
  return pool.map(
    task,
    plan.map((batch) => ({ ...batch, x: batch.x.slice(), ...target })),
    {
      transfer: (input) => [input.x.buffer as ArrayBuffer],
      signal: opts.signal,
      // A pool map's progress (jobs, with running jobs' shares) as whole examples out of `n`.
      onProgress: (done, total) => opts.onProgress?.(Math.floor((done / total) * n), n),
    },
  );
}
