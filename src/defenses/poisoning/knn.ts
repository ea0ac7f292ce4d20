/**
 * Deep k-NN (Peri et al., "Deep k-NN Defense against Clean-label Data Poisoning Attacks", 2020):
 * each training example's k nearest neighbours among the other training examples, by Euclidean
 * distance between penultimate features; the example is flagged when its label is not a mode of
 * its neighbours' labels (a tie that includes its own label keeps it). Score: the share of the
 * neighbours with another label. Catches label flips and clean-label poisons, whose features sit
 * among another class's; a patch backdoor whose poisons form their own cluster can pass it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Dataset } from '../../data/index.js';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { parseWith } from '../../options.js';
import { trainingFeatures } from './class-features.js';
import type { InspectionResult } from './inspection.js';

export const knnSchema = z
  .strictObject({
    /** Neighbours per example (the paper sets k to one or two times the poisons per class). */
    k: z.number().int().min(1).max(1000).default(50).describe('neighbours per example'),
  })
  .describe('deep k-NN');
export type KnnConfig = z.infer<typeof knnSchema>;

/** Query rows per distance block (a block × n float32 matrix). */
const BLOCK = 256;

/**
 * The k nearest other rows of each of the n × d rows (squared Euclidean distance computed in
 * float32; ties as tf.topk breaks them), as an n × k index matrix, nearest first.
 */
export function nearestNeighbours(
  features: Float64Array,
  n: number,
  d: number,
  k: number,
  onProgress?: (done: number, total: number) => void,
): Int32Array {
  const out = new Int32Array(n * k);
  const all = tf.tensor2d(Float32Array.from(features), [n, d]);
  const sq = tf.tidy(() => tf.sum(tf.square(all), 1));
  try {
    for (let start = 0; start < n; start += BLOCK) {
      const size = Math.min(BLOCK, n - start);
      const idx = tf.tidy(() => {
        const q = tf.slice(all, [start, 0], [size, d]);
        const qsq = tf.slice(sq, [start], [size]);
        // −‖q − x‖² = 2 q·x − ‖q‖² − ‖x‖²; k + 1 nearest, the query itself among them.
        const negDist = tf.sub(
          tf.sub(tf.mul(2, tf.matMul(q, all, false, true)), tf.expandDims(qsq, 1)),
          tf.expandDims(sq, 0),
        );
        return tf.topk(negDist, Math.min(k + 1, n)).indices;
      });
      const near = idx.dataSync() as Int32Array;
      idx.dispose();
      const width = Math.min(k + 1, n);
      for (let r = 0; r < size; r++) {
        // Drop the query (or, if duplicates pushed it out, the farthest of the k + 1).
        let o = (start + r) * k;
        let skipped = false;
        for (let m = 0; m < width && o < (start + r + 1) * k; m++) {
          const j = near[r * width + m];
          if (j === start + r && !skipped) {
            skipped = true;
            continue;
          }
          out[o++] = j;
        }
      }
      onProgress?.(start + size, n);
    }
  } finally {
    all.dispose();
    sq.dispose();
  }
  return out;
}

/** Deep k-NN on the training set `data` with the penultimate features of `model`. */
export function deepKnn(
  model: Classifier,
  data: Dataset,
  config: z.input<typeof knnSchema> = {},
  onProgress?: (done: number, total: number) => void,
): InspectionResult {
  const c = parseWith('deep k-NN', knnSchema, config);
  const n = data.shape[0];
  if (c.k >= n) {
    throw new ParryError(
      'BAD_OPTION',
      `deep k-NN: k = ${c.k} needs more than ${c.k} examples, got ${n}`,
    );
  }
  // Features take the first half of the progress, the neighbour search the second.
  const half = (base: number) => (done: number, total: number) =>
    onProgress?.(base + done / 2, total);
  const { features, d } = trainingFeatures(model, data, half(0));
  const nn = nearestNeighbours(features, n, d, c.k, half(n / 2));
  const scores = new Float64Array(n);
  const flagged: number[] = [];
  const flaggedPerClass = new Float64Array(data.numClasses);
  const examplesPerClass = new Float64Array(data.numClasses);
  const votes = new Int32Array(data.numClasses);
  for (let i = 0; i < n; i++) {
    votes.fill(0);
    for (let j = 0; j < c.k; j++) votes[data.labels[nn[i * c.k + j]]]++;
    const own = data.labels[i];
    let mode = 0;
    for (const v of votes) mode = Math.max(mode, v);
    scores[i] = 1 - votes[own] / c.k;
    examplesPerClass[own]++;
    if (votes[own] < mode) {
      flagged.push(i);
      flaggedPerClass[own]++;
    }
  }
  const perClass = Array.from(examplesPerClass, (examples, y) => ({
    class: y,
    examples,
    flagged: flaggedPerClass[y],
  })).filter((r) => r.examples > 0);
  return { method: 'knn', flagged, scores, perClass };
}
