/**
 * Rounding: every probability rounded to `decimals` decimal places (ART's Rounded), half to even
 * as NumPy's `around` and tfjs's `round` do. Rows no longer sum to 1 exactly. Rounding is
 * monotone, so the top class stays a maximum, but close classes can become equal: the argmax is
 * kept only among ties.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkProbabilities, type OutputDefense } from './output-defense.js';

export const roundingSchema = z.strictObject({
  decimals: z.number().int().min(1).max(7).default(2).describe('decimal places kept (rounding)'),
});
export type RoundingConfig = z.output<typeof roundingSchema>;

/** `probs` rounded to `decimals` places. Caller owns the result. */
export function roundProbabilities(probs: tf.Tensor2D, decimals: number): tf.Tensor2D {
  checkProbabilities('roundProbabilities', probs);
  const scale = 10 ** decimals;
  return tf.tidy(() => tf.div(tf.round(tf.mul(probs, scale)), scale) as tf.Tensor2D);
}

export function createRounding(c: RoundingConfig): OutputDefense {
  return {
    name: 'rounding',
    params: c,
    randomized: false,
    preserves: { argmax: 'among-ties', sumsToOne: false },
    apply: (probs) => roundProbabilities(probs, c.decimals),
  };
}
