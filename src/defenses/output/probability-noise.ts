/**
 * Gaussian noise on the probabilities (ART's GaussianNoise): p + N(0, σ²) per value, values below
 * 0 set to 0, each row divided by its sum. Values above 1 are not clipped first (as in ART; the
 * division brings the row back into [0, 1]). Noise is drawn from the defence's own generator,
 * seeded by `seed`, so a run of queries is reproducible. A row whose noisy values are all ≤ 0
 * carries no information and comes back uniform (ART divides by 0 there). The argmax changes
 * only where the top two probabilities are within a few σ of each other.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { checkProbabilities, normalizeRows, type OutputDefense } from './output-defense.js';

export const probabilityNoiseSchema = z.strictObject({
  sigma: z
    .number()
    .positive()
    .default(0.05)
    .describe('standard deviation of the noise added to each probability (noise)'),
  seed: z.number().int().min(0).max(0xffffffff).default(0).describe('random seed'),
});
export type ProbabilityNoiseConfig = z.output<typeof probabilityNoiseSchema>;

/**
 * `probs` `[batch, classes]` plus N(0, σ²) noise from `rng` (drawn row by row, in `fillNormal`'s
 * order), clipped below at 0 and renormalised. Caller owns the result.
 */
export function noisyProbabilities(probs: tf.Tensor2D, sigma: number, rng: Rng): tf.Tensor2D {
  checkProbabilities('noisyProbabilities', probs);
  const noise = rng.fillNormal(new Float32Array(probs.size), sigma);
  return tf.tidy(() => {
    const noisy = tf.relu(tf.add(probs, tf.tensor2d(noise, probs.shape))) as tf.Tensor2D;
    return normalizeRows(noisy, tf.fill(probs.shape, 1 / probs.shape[1]) as tf.Tensor2D);
  });
}

export function createProbabilityNoise(c: ProbabilityNoiseConfig): OutputDefense {
  const rng = new Rng(c.seed);
  return {
    name: 'noise',
    params: c,
    randomized: true,
    preserves: { argmax: 'not-guaranteed', sumsToOne: true },
    apply: (probs) => noisyProbabilities(probs, c.sigma, rng),
  };
}
