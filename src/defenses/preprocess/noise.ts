/**
 * Additive random noise: x + N(0, sigma²) or x + U(−sigma, sigma) per value, clipped to bounds.
 * Randomised and differentiable: the adaptive attack on it is EOT (Athalye, Engstrom, Ilyas &
 * Kwok 2018), averaging over draws.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { parseWith } from '../../options.js';
import { needRng, type Preprocessor } from './preprocessor.js';

export const noiseSchema = z
  .object({
    kind: z.enum(['gaussian', 'uniform']).default('gaussian'),
    sigma: z.number().min(0).default(0.05),
  })
  .strict();

export function createNoise(params: unknown): Preprocessor {
  const c = parseWith('noise', noiseSchema, params);
  const noisy = (x: tf.Tensor4D, bounds: readonly [number, number], seed: number) =>
    tf.tidy(() => {
      const n =
        c.kind === 'gaussian'
          ? tf.randomNormal(x.shape, 0, c.sigma, 'float32', seed)
          : tf.randomUniform(x.shape, -c.sigma, c.sigma, 'float32', seed);
      return tf.clipByValue(tf.add(x, n), bounds[0], bounds[1]) as tf.Tensor4D;
    });
  return {
    name: 'noise',
    params: c,
    differentiable: true,
    randomized: true,
    apply: (x, bounds, rng) => noisy(x, bounds, needRng('noise', rng).nextSeed()),
    surrogate: (x) => tf.clone(x),
  };
}
