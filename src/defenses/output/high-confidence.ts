/**
 * High confidence only: probabilities below `cutoff` are set to 0, the rest kept as they are
 * (ART's HighConfidence, whose default cutoff is 0.25); rows are not rescaled. A row whose top
 * probability is below the cutoff comes out all zero, where every class ties.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkProbabilities, type OutputDefense } from './output-defense.js';

export const highConfidenceSchema = z.strictObject({
  cutoff: z
    .number()
    .gt(0)
    .max(1)
    .default(0.25)
    .describe('probabilities below it are answered as 0 (high-confidence)'),
});
export type HighConfidenceConfig = z.output<typeof highConfidenceSchema>;

/** `probs` with every value below `cutoff` zeroed. Caller owns the result. */
export function highConfidenceProbabilities(probs: tf.Tensor2D, cutoff: number): tf.Tensor2D {
  checkProbabilities('highConfidenceProbabilities', probs);
  return tf.tidy(() => tf.where(tf.less(probs, cutoff), tf.zerosLike(probs), probs) as tf.Tensor2D);
}

export function createHighConfidence(c: HighConfidenceConfig): OutputDefense {
  return {
    name: 'high-confidence',
    params: c,
    randomized: false,
    preserves: { argmax: 'among-ties', sumsToOne: false },
    apply: (probs) => highConfidenceProbabilities(probs, c.cutoff),
  };
}
