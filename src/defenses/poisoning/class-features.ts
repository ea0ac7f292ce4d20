/**
 * What the data-inspection defences read: the penultimate features of every training example
 * (read once, in float64), and the rows of each class.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Dataset } from '../../data/index.js';
import { exampleSize } from '../../data/index.js';
import type { Classifier } from '../../models/classifier.js';
import { featureModel, readFeatures } from '../../models/features.js';

export interface TrainingFeatures {
  /** n × d, row-major. */
  features: Float64Array;
  d: number;
}

/** Examples per forward pass (and per progress report). */
const CHUNK = 1024;

/**
 * Penultimate features of every example of `data` under `model` (a Sequential TfjsClassifier),
 * `onProgress(done, n)` after each chunk.
 */
export function trainingFeatures(
  model: Classifier,
  data: Dataset,
  onProgress?: (done: number, total: number) => void,
): TrainingFeatures {
  const fm = featureModel(model);
  const n = data.shape[0];
  const per = exampleSize(data);
  let out: Float64Array | undefined;
  let d = 0;
  for (let start = 0; start < n; start += CHUNK) {
    const size = Math.min(CHUNK, n - start);
    const xs = tf.tensor(data.x.subarray(start * per, (start + size) * per), [
      size,
      ...data.shape.slice(1),
    ]);
    let f: Float64Array;
    try {
      f = readFeatures(fm, xs, fm.penultimate);
    } finally {
      xs.dispose();
    }
    if (out === undefined) {
      d = f.length / size;
      out = new Float64Array(n * d);
    }
    out.set(f, start * d);
    onProgress?.(start + size, n);
  }
  return { features: out ?? new Float64Array(0), d };
}

/** Indices of the examples labelled `y`, ascending. */
export function classRows(labels: ArrayLike<number>, y: number): number[] {
  const rows: number[] = [];
  for (let i = 0; i < labels.length; i++) if (labels[i] === y) rows.push(i);
  return rows;
}

/** The rows `rows` of the n × d matrix `features`, as a new rows.length × d matrix. */
export function pickRows(features: Float64Array, d: number, rows: readonly number[]): Float64Array {
  const out = new Float64Array(rows.length * d);
  rows.forEach((i, k) => {
    out.set(features.subarray(i * d, (i + 1) * d), k * d);
  });
  return out;
}
