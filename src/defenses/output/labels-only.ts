/**
 * Labels only: the one-hot vector of each row's top class (ART's ClassLabels), the answer of a
 * decision-only service. Ties go to the lowest class index (tf.argMax).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkProbabilities, type OutputDefense } from './output-defense.js';

export const labelsOnlySchema = z.strictObject({});

/** One-hot `[batch, classes]` float32 of each row's argmax. Caller owns the result. */
export function labelsOnly(probs: tf.Tensor2D): tf.Tensor2D {
  checkProbabilities('labelsOnly', probs);
  return tf.tidy(
    () => tf.cast(tf.oneHot(tf.argMax(probs, 1), probs.shape[1]), 'float32') as tf.Tensor2D,
  );
}

export function createLabelsOnly(): OutputDefense {
  return {
    name: 'labels-only',
    params: {},
    randomized: false,
    preserves: { argmax: 'kept', sumsToOne: true },
    apply: labelsOnly,
  };
}
