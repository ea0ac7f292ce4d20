/**
 * Running an evaluation's batches: in this thread, one after the other, with progress in whole
 * examples (the finished batches plus the finished share of the running one), or progress from a
 * pool's map. Shared by the attack and the defense evaluations.
 */

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

/** A pool map's progress (jobs, with running jobs' shares) as whole examples out of `n`. */
export function examplesProgress(n: number, opts: BatchRunOptions) {
  return (done: number, total: number) => opts.onProgress?.(Math.floor((done / total) * n), n);
}
