/**
 * Spatial smoothing: a k×k mean or Gaussian (std `sigma` pixels) filter per channel over the
 * reflect-padded image, as a depthwise convolution. Differentiable: a plain gradient attack sees
 * through it, so no BPDA is needed (the surrogate is the filter itself).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { parseWith } from '../../options.js';
import { type Preprocessor, reflectPad } from './preprocessor.js';

export const smoothingSchema = z
  .object({
    kind: z.enum(['mean', 'gaussian']).default('mean'),
    k: z
      .number()
      .int()
      .min(1)
      .max(15)
      .refine((k) => k % 2 === 1, 'k must be odd')
      .default(3),
    sigma: z.number().positive().default(1),
  })
  .strict();

/** Normalised k×k weights, row-major. */
export function smoothingKernel(kind: 'mean' | 'gaussian', k: number, sigma: number): number[] {
  const r = (k - 1) / 2;
  const w: number[] = [];
  for (let i = -r; i <= r; i++) {
    for (let j = -r; j <= r; j++) {
      w.push(kind === 'mean' ? 1 : Math.exp(-(i * i + j * j) / (2 * sigma * sigma)));
    }
  }
  const total = w.reduce((a, v) => a + v, 0);
  return w.map((v) => v / total);
}

export function createSmoothing(params: unknown): Preprocessor {
  const c = parseWith('smooth', smoothingSchema, params);
  const weights = smoothingKernel(c.kind, c.k, c.sigma);
  const smooth = (x: tf.Tensor4D): tf.Tensor4D =>
    tf.tidy(() => {
      const ch = x.shape[3];
      const filter = tf.tile(tf.tensor4d(weights, [c.k, c.k, 1, 1]), [1, 1, ch, 1]);
      return tf.depthwiseConv2d(reflectPad(x, (c.k - 1) / 2), filter as tf.Tensor4D, 1, 'valid');
    });
  return {
    name: 'smooth',
    params: c,
    differentiable: true,
    randomized: false,
    apply: smooth,
    surrogate: smooth,
  };
}
