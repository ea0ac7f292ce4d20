/**
 * Batched prediction over an in-memory data set: predicted labels, accuracy, and the logits'
 * softmax confidence. Reads each batch's values once (a boundary: results go to JS arrays).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../data/index.js';
import type { Classifier } from '../models/classifier.js';

export interface Predictions {
  /** Predicted class per example. */
  predictions: Int32Array;
  /** Softmax probability of the predicted class. */
  confidence: Float32Array;
  /** Fraction of examples whose prediction equals the label. */
  accuracy: number;
}

export async function predictDataset(
  model: Classifier,
  data: Dataset,
  batchSize = 256,
  onProgress?: (done: number, total: number) => void,
): Promise<Predictions> {
  const n = data.shape[0];
  const per = data.shape.slice(1).reduce((a, b) => a * b, 1);
  const predictions = new Int32Array(n);
  const confidence = new Float32Array(n);
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const [pred, conf] = tf.tidy(() => {
      const x = tf.tensor(data.x.subarray(start * per, end * per), [
        end - start,
        ...data.shape.slice(1),
      ]);
      const probs = tf.softmax(model.logits(x));
      return [tf.argMax(probs, 1), tf.max(probs, 1)];
    });
    predictions.set(await pred.data(), start);
    confidence.set(await conf.data(), start);
    pred.dispose();
    conf.dispose();
    onProgress?.(end, n);
  }
  let correct = 0;
  for (let i = 0; i < n; i++) if (predictions[i] === data.labels[i]) correct++;
  return { predictions, confidence, accuracy: n === 0 ? Number.NaN : correct / n };
}
