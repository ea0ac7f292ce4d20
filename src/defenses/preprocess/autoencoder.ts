/**
 * Autoencoder preprocessing: a small convolutional autoencoder trained to map noisy inputs back
 * to clean ones (a denoising autoencoder, Gu & Rigazio 2015), and its use as MagNet's reformer
 * (Meng & Chen 2017: the input is replaced by the autoencoder's reconstruction, moving it towards
 * the data manifold). The network is close to MagNet's MNIST reformer without pooling: three 3×3
 * convolutions, 'same' padding (relu instead of sigmoid, and residual, see `buildDenoiser`, for
 * fast training). It works on values rescaled to [0, 1] over the bounds, output clipped. Differentiable: a plain gradient attack goes through the network.
 */

import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { type Dataset, exampleSize } from '../../data/index.js';
import { writeFolder } from '../../engine/output-path.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import { fileHandler, saveLayersModel } from '../../models/io.js';
import { parseWith } from '../../options.js';
import type { Preprocessor } from './preprocessor.js';

export const autoencoderSchema = z.object({ model: z.string().min(1) }).strict();

export const denoiserTrainingSchema = z
  .object({
    noiseSigma: z.number().positive().default(0.1),
    epochs: z.number().int().min(1).default(5),
    batchSize: z.number().int().min(1).default(16),
    lr: z.number().positive().default(3e-3),
    filters: z.number().int().min(1).max(128).default(16),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type DenoiserTrainingConfig = z.infer<typeof denoiserTrainingSchema>;

/**
 * The autoencoder for inputs `[h, w, c]`, weights from `seed`. Its output is x + r(x), r a small
 * conv net whose last layer starts at zero (residual learning, DnCNN, Zhang et al. 2017): training
 * starts from the identity, so even a few steps give a reconstruction closer to the clean input
 * than the noisy one was, instead of first having to learn to copy.
 */
export function buildDenoiser(
  inputShape: number[],
  filters: number,
  seed: number,
): tfl.LayersModel {
  const conv = (f: number, activation: 'relu' | 'linear', i: number) =>
    tfl.layers.conv2d({
      filters: f,
      kernelSize: 3,
      padding: 'same',
      activation,
      kernelInitializer:
        activation === 'linear' ? 'zeros' : tfl.initializers.heNormal({ seed: seed + i }),
      name: `ae_conv${i}`,
    });
  const input = tfl.input({ shape: inputShape, name: 'ae_input' });
  let h = conv(filters, 'relu', 1).apply(input) as tfl.SymbolicTensor;
  h = conv(filters, 'relu', 2).apply(h) as tfl.SymbolicTensor;
  const residual = conv(inputShape[2], 'linear', 3).apply(h) as tfl.SymbolicTensor;
  const output = tfl.layers
    .add({ name: 'ae_output' })
    .apply([input, residual]) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: output, name: 'denoiser' });
}

export interface DenoiserEpoch {
  epoch: number;
  /** Mean squared reconstruction error of noisy training inputs against the clean ones. */
  loss: number;
  seconds: number;
}

/**
 * Trains `model` in place to reconstruct clean examples of `data` (values in [0, 1]) from
 * x + N(0, noiseSigma²) clipped to [0, 1]; noise and order from the seeded Rng.
 */
export async function trainDenoiser(
  model: tfl.LayersModel,
  data: Dataset,
  config: unknown,
  onEpoch?: (e: DenoiserEpoch) => void,
): Promise<{ config: DenoiserTrainingConfig; epochs: DenoiserEpoch[] }> {
  const c = parseWith('train-denoiser', denoiserTrainingSchema, config);
  const rng = new Rng(c.seed);
  const optimizer = tf.train.adam(c.lr);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const n = data.shape[0];
  const per = exampleSize(data);
  const epochs: DenoiserEpoch[] = [];
  try {
    for (let epoch = 1; epoch <= c.epochs; epoch++) {
      const started = performance.now();
      const order = rng.permutation(n);
      let sum = 0;
      for (let start = 0; start < n; start += c.batchSize) {
        const m = Math.min(c.batchSize, n - start);
        const clean = new Float32Array(m * per);
        const noisy = new Float32Array(m * per);
        for (let i = 0; i < m; i++) {
          const j = order[start + i];
          clean.set(data.x.subarray(j * per, (j + 1) * per), i * per);
        }
        for (let i = 0; i < m * per; i++) {
          noisy[i] = Math.min(1, Math.max(0, clean[i] + c.noiseSigma * rng.normal()));
        }
        const shape = [m, ...data.shape.slice(1)];
        const loss = tf.tidy(() => {
          const x = tf.tensor(noisy, shape);
          const y = tf.tensor(clean, shape);
          return optimizer.minimize(
            () =>
              tf.mean(
                tf.squaredDifference(model.apply(x, { training: true }) as tf.Tensor, y),
              ) as tf.Scalar,
            true,
            vars,
          ) as tf.Scalar;
        });
        sum += (await loss.data())[0] * m;
        loss.dispose();
      }
      const record = { epoch, loss: sum / n, seconds: (performance.now() - started) / 1000 };
      epochs.push(record);
      onEpoch?.(record);
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    optimizer.dispose();
  }
  return { config: c, epochs };
}

/** Saves a trained denoiser as a TF.js LayersModel directory with its training record. */
export async function saveDenoiser(
  model: tfl.LayersModel,
  dir: string,
  record: Record<string, unknown>,
): Promise<void> {
  // Written whole (a temporary folder renamed into place): never half a model.
  await writeFolder(
    dir,
    (temporary) =>
      saveLayersModel(model, temporary, {
        metadata: { arch: 'denoiser', bounds: [0, 1], ...record },
      }).then(() => undefined),
    ['model.json'],
  );
}

/** Loads a denoiser saved by `saveDenoiser` (or any image-to-image LayersModel). */
export async function loadDenoiser(dir: string): Promise<tfl.LayersModel> {
  const artifacts = await fileHandler(dir).load();
  try {
    return await tfl.loadLayersModel({ load: async () => artifacts });
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `denoiser: cannot build the model in ${dir}: ${(e as Error).message}`,
    );
  }
}

/** The reconstruction of x (in bounds) by `model`, which works in [0, 1]. Caller owns it. */
export function reconstruct(
  model: tfl.LayersModel,
  x: tf.Tensor4D,
  [lo, hi]: readonly [number, number],
): tf.Tensor4D {
  return tf.tidy(() => {
    const unit = tf.div(tf.sub(x, lo), hi - lo);
    const out = model.apply(unit, { training: false }) as tf.Tensor4D;
    return tf.clipByValue(tf.add(tf.mul(out, hi - lo), lo), lo, hi) as tf.Tensor4D;
  });
}

/**
 * 'denoiser' (a denoising autoencoder as preprocessing) or 'magnet' (MagNet's reformer: the same
 * reconstruction, named after its use), from a loaded model. The caller keeps the model alive.
 */
export function createAutoencoder(
  name: 'denoiser' | 'magnet',
  params: unknown,
  model: tfl.LayersModel,
): Preprocessor {
  const c = parseWith(name, autoencoderSchema, params);
  const apply = (x: tf.Tensor4D, bounds: readonly [number, number]) => {
    const shape = model.inputs[0].shape.slice(1);
    if (!shape.every((d, i) => d == null || d === x.shape[i + 1])) {
      throw new ParryError(
        'BAD_INPUT',
        `${name}: the autoencoder takes [${shape}], the classifier's inputs are [${x.shape.slice(1)}]`,
      );
    }
    return reconstruct(model, x, bounds);
  };
  return {
    name,
    params: c,
    differentiable: true,
    randomized: false,
    apply,
    surrogate: apply,
  };
}
