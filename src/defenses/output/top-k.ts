/**
 * Top-k: the k largest probabilities of each row are kept, the rest set to 0. Like ART's
 * postprocessors (HighConfidence), the kept values are not rescaled unless `renormalize` is set;
 * then each row is divided by its kept mass and sums to 1. Ties at the k-th value keep the
 * lowest class indices (tf.topk's order); k larger than the number of classes keeps every class.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkProbabilities, normalizeRows, type OutputDefense } from './output-defense.js';

export const topKSchema = z.strictObject({
  k: z.number().int().min(1).default(1).describe('probabilities kept per answer (top-k)'),
  renormalize: z
    .boolean()
    .default(false)
    .describe('rescale the kept probabilities to sum to 1 (default: the rest are only zeroed)'),
});
export type TopKConfig = z.output<typeof topKSchema>;

/** `probs` `[batch, classes]` with all but the k largest of each row zeroed. Caller owns the result. */
export function topKProbabilities(probs: tf.Tensor2D, k: number, renormalize = false): tf.Tensor2D {
  checkProbabilities('topKProbabilities', probs);
  const classes = probs.shape[1];
  const kept = Math.min(k, classes);
  return tf.tidy(() => {
    const { indices } = tf.topk(probs, kept);
    const mask = tf.sum(tf.oneHot(indices, classes), 1);
    const out = tf.mul(probs, tf.cast(mask, probs.dtype)) as tf.Tensor2D;
    return renormalize ? normalizeRows(out, out) : out;
  });
}

export function createTopK(c: TopKConfig): OutputDefense {
  return {
    name: 'top-k',
    params: c,
    randomized: false,
    preserves: { argmax: 'kept', sumsToOne: c.renormalize },
    apply: (probs) => topKProbabilities(probs, c.k, c.renormalize),
  };
}
