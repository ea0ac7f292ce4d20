/**
 * Engine benchmark: cnn-small at batch 128 on the chosen backend (wasm by default).
 * Prints one JSON object: forward, input-gradient and training-step times, conv kernel GFLOP/s
 * (bench/kernels.ts) and the worker-pool speed-up (src/engine/pool-bench.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/engine/backend.js';
import { buildArchitecture } from '../src/models/index.js';
import { crossEntropy } from '../src/objectives/losses.js';

const BATCH = 128;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median milliseconds of `f` over `reps` runs after `warmup` runs; `f` must free what it makes. */
export function timeMs(f: () => void, reps = 5, warmup = 2): number {
  for (let i = 0; i < warmup; i++) f();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    f();
    times.push(performance.now() - t0);
  }
  return median(times);
}

export async function benchModelSteps(): Promise<Record<string, number>> {
  const model = buildArchitecture('cnn-small', {
    inputShape: [28, 28, 1],
    numClasses: 10,
    seed: 1,
  });
  const x = tf.randomUniform([BATCH, 28, 28, 1], 0, 1, 'float32', 1);
  const y = tf.tensor1d(
    Array.from({ length: BATCH }, (_, i) => i % 10),
    'int32',
  );
  const optimizer = tf.train.sgd(1e-3);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const sync = (t: tf.Tensor) => t.dataSync();
  const forwardMs = timeMs(() =>
    tf.tidy(() => {
      sync(model.apply(x, { training: false }) as tf.Tensor);
    }),
  );
  const inputGradMs = timeMs(() =>
    tf.tidy(() => {
      const g = tf.grad((z: tf.Tensor) =>
        tf.sum(crossEntropy(model.apply(z, { training: false }) as tf.Tensor2D, y)),
      )(x);
      sync(g);
    }),
  );
  const trainStepMs = timeMs(() =>
    tf.tidy(() => {
      const loss = optimizer.minimize(
        () =>
          tf.mean(crossEntropy(model.apply(x, { training: true }) as tf.Tensor2D, y)) as tf.Scalar,
        true,
        vars,
      );
      sync(loss!);
      for (const v of vars) sync(v);
    }),
  );
  x.dispose();
  y.dispose();
  optimizer.dispose();
  model.dispose();
  return {
    forward_ms: forwardMs,
    input_grad_ms: inputGradMs,
    train_step_ms: trainStepMs,
    input_grad_over_forward: inputGradMs / forwardMs,
    train_step_over_forward: trainStepMs / forwardMs,
  };
}

export async function benchEngine(backend?: string): Promise<Record<string, unknown>> {
  const name = await initBackend(backend);
  const steps = await benchModelSteps();
  const { benchKernels } = await import('./kernels.js');
  const kernels = await benchKernels();
  const { benchPool } = await import('./pool.js');
  const pool = await benchPool();
  return {
    benchmark: 'engine',
    backend: name,
    model: 'cnn-small',
    batch: BATCH,
    ...steps,
    ...kernels,
    ...pool,
    two_worker_speedup: pool.forward_10k_1worker_s / pool.forward_10k_2workers_s,
  };
}
