/**
 * Measures what the worker pool buys: the `benchConv` forward pass (conv 3x3x32 -> conv 3x3x64 ->
 * maxPool -> dense 10, cnn-small-like) over synthetic 28x28x1 images in batches, with one worker
 * and with two. Worker start-up and one warm-up batch per worker are not timed.
 */

import { mapBatches, WorkerPool } from '../src/engine/pool.js';
import { Rng } from '../src/engine/rng.js';
import { benchConvTask } from './pool-tasks.js';

export interface PoolBenchResult {
  forward_10k_1worker_s: number;
  forward_10k_2workers_s: number;
}

export interface PoolBenchOptions {
  /** Images (default 10,000). */
  images?: number;
  /** Rows per job (default 128). */
  batchSize?: number;
  /** Timed passes per pool size, alternating 1, 2, 1, 2, ...; the fastest counts (default 2). */
  repeats?: number;
  /** Backend of the workers (default: `resolveBackendName()`). */
  backend?: string;
}

/**
 * Seconds for one pass over the images with 1 and with 2 workers. Passes alternate between the
 * two pools and the fastest of `repeats` is kept, so load from other processes on a shared
 * machine biases neither side.
 */
export async function benchPool(options: PoolBenchOptions = {}): Promise<PoolBenchResult> {
  const { images = 10_000, batchSize = 128, repeats = 2, backend } = options;
  const x = new Float32Array(images * 28 * 28);
  const rng = new Rng(1);
  for (let i = 0; i < x.length; i++) x[i] = rng.next();
  const data = { x, shape: [images, 28, 28, 1] };
  const pools = [new WorkerPool({ workers: 1, backend }), new WorkerPool({ workers: 2, backend })];
  try {
    await Promise.all(pools.map((p) => p.ready()));
    // One warm-up job per worker: weights and wasm operator set-up are not timed.
    const warm = { x: x.slice(0, batchSize * 28 * 28), shape: [batchSize, 28, 28, 1] };
    for (const pool of pools) {
      await pool.map(
        benchConvTask(),
        Array.from({ length: pool.size }, () => warm),
      );
    }
    const best = [Infinity, Infinity];
    for (let r = 0; r < repeats; r++) {
      for (const [i, pool] of pools.entries()) {
        const t0 = performance.now();
        await mapBatches(pool, benchConvTask(), data, batchSize, { seed: 1 });
        best[i] = Math.min(best[i], (performance.now() - t0) / 1000);
      }
    }
    return { forward_10k_1worker_s: best[0], forward_10k_2workers_s: best[1] };
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
}
