/**
 * Engine benchmark: cnn-small at batch 128 on the chosen backend (wasm by default).
 * Prints one JSON object: forward, input-gradient and training-step times, conv kernel GFLOP/s
 * (bench/kernels.ts) and the worker-pool speed-up (bench/pool.ts); then, per engine (tfjs on the
 * backend, ONNX Runtime), the committed models/fmnist-cnn-small's forward and forward + input
 * gradient milliseconds in this thread and its forward images per second over the worker pool.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { attackGradient } from '../src/attacks/evasion/gradient-loop.js';
import { type Dataset, loadDataset } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { packageRoot } from '../src/engine/paths.js';
import { WorkerPool } from '../src/engine/pool.js';
import { predictDatasetPooled } from '../src/evaluate/predictions.js';
import { buildArchitecture, loadClassifier } from '../src/models/index.js';
import { crossEntropy } from '../src/objectives/losses.js';

/** The engines the benchmarks compare: tfjs on the chosen backend, and ONNX Runtime. */
export const ENGINES = ['tfjs', 'ort'] as const;

/**
 * Runs `f` with $PARRY_ENGINE set to `engine` (model loads in this thread and in worker pools
 * created inside `f`, whose environment is copied at start, follow it), then restores it.
 */
export async function withEngine<T>(engine: string, f: () => Promise<T>): Promise<T> {
  const before = process.env.PARRY_ENGINE;
  process.env.PARRY_ENGINE = engine;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.PARRY_ENGINE;
    else process.env.PARRY_ENGINE = before;
  }
}

/** `data` repeated until it holds at least `n` examples. */
export function repeated(data: Dataset, n: number): Dataset {
  const copies = Math.ceil(n / data.shape[0]);
  const x = new Float32Array(copies * data.x.length);
  const labels = new Int32Array(copies * data.shape[0]);
  for (let i = 0; i < copies; i++) {
    x.set(data.x, i * data.x.length);
    labels.set(data.labels, i * data.shape[0]);
  }
  return { ...data, x, labels, shape: [copies * data.shape[0], ...data.shape.slice(1)] };
}

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

/**
 * Per engine, on models/fmnist-cnn-small at batch 128: forward and forward + input-gradient
 * (cross-entropy, the attacks' gradient call) milliseconds in this thread, and forward images per
 * second over one worker per core (10,240 images in batches of 128, after a warm-up pass).
 */
export async function benchEngines(backend: string): Promise<Record<string, unknown>> {
  const dir = path.join(packageRoot(), 'models', 'fmnist-cnn-small');
  const test = loadDataset('fashion-mnist-subset', 'test');
  const x = tf.tensor(test.x.subarray(0, BATCH * 784), [BATCH, 28, 28, 1]);
  const goal = tf.tensor1d(test.labels.subarray(0, BATCH), 'int32');
  const many = repeated(test, 80 * BATCH);
  const workers = availableParallelism();
  const out: Record<string, Record<string, number>> = {};
  try {
    for (const engine of ENGINES) {
      const model = await loadClassifier(dir, { engine });
      const sync = (t: tf.Tensor) => t.dataSync();
      const forwardMs = timeMs(() => tf.tidy(() => sync(model.logits(x))), 10, 3);
      const named = { goal, targeted: false, loss: 'ce' as const };
      const gradientMs = timeMs(() => tf.tidy(() => sync(attackGradient(model, x, named))), 10, 3);
      model.dispose();
      const pooled = await withEngine(engine, async () => {
        const pool = new WorkerPool({ workers, backend });
        try {
          await pool.ready();
          await predictDatasetPooled(pool, dir, repeated(test, workers * BATCH), BATCH);
          const started = performance.now();
          await predictDatasetPooled(pool, dir, many, BATCH);
          return many.shape[0] / ((performance.now() - started) / 1000);
        } finally {
          await pool.close();
        }
      });
      out[engine] = {
        forward_ms: Math.round(forwardMs * 10) / 10,
        forward_gradient_ms: Math.round(gradientMs * 10) / 10,
        pooled_forward_images_per_s: Math.round(pooled),
      };
    }
  } finally {
    tf.dispose([x, goal]);
  }
  return {
    model: 'fmnist-cnn-small',
    batch: BATCH,
    workers,
    ...out,
    ort_over_tfjs: {
      forward: Math.round((out.tfjs.forward_ms / out.ort.forward_ms) * 100) / 100,
      forward_gradient:
        Math.round((out.tfjs.forward_gradient_ms / out.ort.forward_gradient_ms) * 100) / 100,
      pooled_forward:
        Math.round(
          (out.ort.pooled_forward_images_per_s / out.tfjs.pooled_forward_images_per_s) * 100,
        ) / 100,
    },
  };
}

export async function benchEngine(backend?: string): Promise<Record<string, unknown>> {
  const name = await initBackend(backend);
  const engines = await benchEngines(name);
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
    engines,
  };
}
