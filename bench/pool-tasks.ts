/**
 * The benchmark's pool task: a seeded cnn-small-like forward pass that needs no trained model.
 * It lives here, not in the engine, because the engine knows no network; the pool's tests use it
 * too (as a module task, from the compiled dist/bench/pool-tasks.js).
 */
import * as tf from '@tensorflow/tfjs-core';
import { compiledModuleUrl } from '../src/engine/paths.js';
import { Rng } from '../src/engine/rng.js';
import {
  type BatchInput,
  type ModuleTask,
  moduleTask,
  type TaskContext,
} from '../src/engine/tasks.js';
import { ParryError } from '../src/errors.js';
import { readAndDispose } from '../src/models/pool-tasks.js';

export interface BenchConvInput extends BatchInput {
  /** Seed of the random weights (the same seed gives the same network in every worker). */
  seed?: number;
}

/**
 * Forward pass of a cnn-small-like network with seeded He-normal weights and no biases:
 * conv 3x3x32 + relu -> conv 3x3x64 + relu -> maxPool 2x2 -> dense 10. Input `[batch, h, w, c]`,
 * output logits `[batch, 10]`. Serves the pool's tests and benchmark without a trained model.
 */
export async function benchConv(input: BenchConvInput, ctx: TaskContext): Promise<Float32Array> {
  const [, h, w, c] = input.shape;
  if (input.shape.length !== 4 || h < 6 || w < 6) {
    throw new ParryError(
      'BAD_INPUT',
      `benchConv: shape must be [batch, h, w, c] with h, w >= 6, got [${input.shape}]`,
    );
  }
  const seed = input.seed ?? 1;
  const key = `benchConv:${seed}:${h}x${w}x${c}`;
  let weights = ctx.cache.get(key) as tf.Tensor[] | undefined;
  if (weights === undefined) {
    const rng = new Rng(seed);
    const flat = Math.floor((h - 4) / 2) * Math.floor((w - 4) / 2) * 64;
    weights = [
      heNormal(rng, [3, 3, c, 32], 9 * c),
      heNormal(rng, [3, 3, 32, 64], 9 * 32),
      heNormal(rng, [flat, 10], flat),
    ];
    ctx.cache.set(key, weights);
  }
  const [w1, w2, w3] = weights as [tf.Tensor4D, tf.Tensor4D, tf.Tensor2D];
  const logits = tf.tidy(() => {
    const x = tf.tensor4d(input.x, input.shape as [number, number, number, number]);
    const a1 = tf.fused.conv2d({ x, filter: w1, strides: 1, pad: 'valid', activation: 'relu' });
    const a2 = tf.fused.conv2d({ x: a1, filter: w2, strides: 1, pad: 'valid', activation: 'relu' });
    const pooled = tf.maxPool(a2, 2, 2, 'valid');
    return tf.matMul(tf.reshape(pooled, [pooled.shape[0], -1]), w3);
  });
  return readAndDispose(logits);
}

function heNormal(rng: Rng, shape: number[], fanIn: number): tf.Tensor {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const scale = Math.sqrt(2 / fanIn);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal() * scale;
  return tf.tensor(values, shape);
}

/** `benchConv` as a task for `WorkerPool.map` / `mapBatches`. */
export function benchConvTask(): ModuleTask<BenchConvInput, Float32Array> {
  return moduleTask(compiledModuleUrl(import.meta.url), 'benchConv');
}
