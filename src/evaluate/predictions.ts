/**
 * Batched prediction over an in-memory data set: predicted labels, accuracy, and the logits'
 * softmax confidence. Reads each batch's values once (a boundary: results go to JS arrays).
 */

import * as tf from '@tensorflow/tfjs-core';
import { type Dataset, exampleSize } from '../data/index.js';
import { concatFloat32, mapBatches, type WorkerPool } from '../engine/pool.js';
import { ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { forwardTask } from '../models/pool-tasks.js';

export interface Predictions {
  /** Predicted class per example. */
  predictions: Int32Array;
  /** Softmax probability of the predicted class. */
  confidence: Float32Array;
  /** Fraction of examples whose prediction equals the label. */
  accuracy: number;
}

/**
 * Refuses outputs computed from NaN or infinite logits (`bad` of `n` examples): a model that
 * produces them (overflow, broken weights) would otherwise be scored, e.g. as robust.
 */
export function checkFiniteLogits(bad: number, n: number, what: string): void {
  if (bad > 0) {
    throw new ParryError(
      'BAD_INPUT',
      `${what}: the model's logits are NaN or infinite on ${bad} of ${n} examples (of a batch); no numbers are reported from them`,
    );
  }
}

export async function predictDataset(
  model: Classifier,
  data: Dataset,
  batchSize = 256,
  onProgress?: (done: number, total: number) => void,
): Promise<Predictions> {
  const n = data.shape[0];
  const per = exampleSize(data);
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
    // Softmax of a NaN or infinite logit is NaN: refused at the first batch holding one.
    const batchConfidence = confidence.subarray(start, end);
    checkFiniteLogits(
      batchConfidence.filter((c) => Number.isNaN(c)).length,
      end - start,
      data.name,
    );
    onProgress?.(end, n);
    // Give timers a turn (progress redraws): awaits on wasm data resolve as microtasks.
    await new Promise((resolve) => setImmediate(resolve));
  }
  let correct = 0;
  for (let i = 0; i < n; i++) if (predictions[i] === data.labels[i]) correct++;
  return { predictions, confidence, accuracy: n === 0 ? Number.NaN : correct / n };
}

/**
 * The same as `predictDataset`, with the forward passes spread over a worker pool: each worker
 * loads the model from `modelDir` once and returns logits for its batches.
 */
export async function predictDatasetPooled(
  pool: WorkerPool,
  modelDir: string,
  data: Dataset,
  batchSize = 256,
  onProgress?: (done: number, total: number) => void,
): Promise<Predictions> {
  const n = data.shape[0];
  const logits = concatFloat32(
    await mapBatches(
      pool,
      forwardTask(),
      { x: data.x, shape: data.shape },
      batchSize,
      { modelDir },
      {
        onProgress: (done, total) => onProgress?.(Math.min(n, Math.round((done / total) * n)), n),
      },
    ),
  );
  const k = logits.length / n;
  checkFiniteLogits(
    Array.from({ length: n }, (_, i) => logits.subarray(i * k, (i + 1) * k)).filter((row) =>
      row.some((v) => !Number.isFinite(v)),
    ).length,
    n,
    data.name,
  );
  const predictions = new Int32Array(n);
  const confidence = new Float32Array(n);
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * k, (i + 1) * k);
    let best = 0;
    for (let j = 1; j < k; j++) if (row[j] > row[best]) best = j;
    let denom = 0;
    for (let j = 0; j < k; j++) denom += Math.exp(row[j] - row[best]);
    predictions[i] = best;
    confidence[i] = 1 / denom;
    if (best === data.labels[i]) correct++;
  }
  return { predictions, confidence, accuracy: n === 0 ? Number.NaN : correct / n };
}
