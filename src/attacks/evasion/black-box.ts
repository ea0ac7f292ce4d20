/**
 * Black-box access shared by the query attacks (Square, HopSkipJump): a counting
 * `QueryClassifier` over a white-box model, and the labels-only view decision-based attacks use.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier, QueryClassifier } from '../../models/classifier.js';

/** A `QueryClassifier` over a white-box model that also counts the examples it was asked about. */
export interface CountingQueryClassifier extends QueryClassifier {
  readonly queries: number;
}

/** `model` behind `answer` (what a query returns for a batch of logits), counting queries. */
function countingBlackBox(
  model: Classifier,
  answer: (logits: tf.Tensor2D) => tf.Tensor2D,
): CountingQueryClassifier {
  let queries = 0;
  return {
    inputShape: model.inputShape,
    numClasses: model.numClasses,
    bounds: model.bounds,
    get queries() {
      return queries;
    },
    predict: async (x: tf.Tensor) => {
      queries += x.shape[0];
      return tf.tidy(() => answer(model.logits(x)));
    },
  };
}

/** Softmax probabilities of `model`, as a black box; `queries` counts queried examples. */
export function queryClassifierFrom(model: Classifier): CountingQueryClassifier {
  return countingBlackBox(model, (logits) => tf.softmax(logits));
}

/**
 * Decision-only access to `model`: one-hot top-1 labels, the argmax of its logits (not of rounded
 * probabilities, where two nearly tied classes can become equal); `queries` counts queried examples.
 */
export function decisionClassifierFrom(model: Classifier): CountingQueryClassifier {
  return countingBlackBox(
    model,
    (logits) =>
      tf.cast(tf.oneHot(tf.argMax(logits, 1), model.numClasses), 'float32') as tf.Tensor2D,
  );
}

/**
 * The top-1 label of each of the `count` rows of `rows` (flat, `[count, ...model.inputShape]`),
 * asking `model` at most `batchSize` rows at a time. Only the argmax of each answer is read, so a
 * model that returns one-hot labels (decision-only access) serves as well as one with scores.
 */
export async function queryLabels(
  model: QueryClassifier,
  rows: Float32Array,
  count: number,
  batchSize: number,
): Promise<Int32Array> {
  const d = rows.length / Math.max(count, 1);
  const out = new Int32Array(count);
  for (let start = 0; start < count; start += batchSize) {
    const m = Math.min(batchSize, count - start);
    const input = tf.tensor(rows.subarray(start * d, (start + m) * d), [m, ...model.inputShape]);
    let scores: tf.Tensor2D | undefined;
    let top: tf.Tensor | undefined;
    try {
      scores = await model.predict(input);
      top = tf.argMax(scores, 1);
      out.set(await top.data(), start);
    } finally {
      tf.dispose([input, scores as tf.Tensor, top as tf.Tensor]);
    }
  }
  return out;
}
