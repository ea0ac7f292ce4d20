/**
 * Activation clustering (Chen et al., "Detecting Backdoor Attacks on Deep Neural Networks by
 * Activation Clustering", 2018). Per class (by the given label): the penultimate activations,
 * reduced to `dims` dimensions (PCA here; the paper uses ICA), split in two by 2-means. A backdoor
 * shows as a small, well-separated cluster: the class is suspicious when the smaller cluster
 * holds at most `sizeThreshold` of the class and the silhouette of the split is at least
 * `silhouetteThreshold`. Exclusionary reclassification (`reclassify`) then confirms a suspicious
 * cluster only when its members, classified by a model that never saw any suspicious cluster,
 * mostly go to another class (share of their own label / share of the best other class <
 * `reclassifyThreshold`): poisons are classified by their content, a clean sub-population (the
 * way Fashion-MNIST's trousers or sneakers split) as its own class. `'retrain'` (the paper's
 * way): a fresh, seeded copy of the model's architecture trained `retrainEpochs` on the set without
 * every suspicious cluster (one retraining for all of them, where the paper retrains per
 * cluster); `'class-mean'`: the nearest class mean of the same penultimate features without the
 * clusters — free, but on a backdoored representation the poisons sit near their target class
 * (measured: it confirms nothing on BadNets); `'none'`: size and silhouette alone.
 *
 * Scores: the verdict first (2 added for members of a flagged cluster), then how firmly an example
 * sits in the smaller cluster ((d_large − d_small) / (d_large + d_small), in [−1, 1], in the
 * reduced space). Threat model: backdoors whose trigger leaves its own mode in the representation.
 */

import * as tf from '@tensorflow/tfjs-core';
import { kmeans } from 'ml-kmeans';
import { EVD, Matrix } from 'ml-matrix';
import { z } from 'zod';
import { type Dataset, selectExamples } from '../../data/index.js';
import type { Classifier } from '../../models/classifier.js';
import { TfjsClassifier } from '../../models/tfjs-classifier.js';
import { parseWith } from '../../options.js';
import { trainModel } from '../../train/loop.js';
import { classRows, pickRows, trainingFeatures } from './class-features.js';
import { freshCopy, layersModelOf } from './fresh-model.js';
import type { InspectionResult } from './inspection.js';
import type { RetrainContext } from './loss-filter.js';

export const activationClusteringSchema = z
  .strictObject({
    /** Dimensions kept by PCA before clustering. */
    dims: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(10)
      .describe('dimensions kept by PCA before 2-means'),
    /** Largest share of its class the smaller cluster may hold and still be suspicious. */
    sizeThreshold: z
      .number()
      .gt(0)
      .lt(0.5)
      .default(0.35)
      .describe('largest share of its class a suspicious (smaller) cluster may hold'),
    /** Smallest mean silhouette of the 2-means split for the class to be suspicious. */
    silhouetteThreshold: z
      .number()
      .min(-1)
      .max(1)
      .default(0.1)
      .describe('smallest mean silhouette of a suspicious split'),
    /** Exclusionary reclassification confirms a suspicious cluster (see the module comment). */
    reclassify: z
      .enum(['retrain', 'class-mean', 'none'])
      .default('retrain')
      .describe('confirm a suspicious cluster: retrain without it, class means, or none'),
    retrainEpochs: z
      .number()
      .int()
      .min(1)
      .default(2)
      .describe('epochs of the reclassifying model (reclassify retrain)'),
    batchSize: z.number().int().min(1).default(128).describe('batch size of the retraining'),
    lr: z.number().positive().default(1e-3).describe('learning rate of the retraining (Adam)'),
    reclassifyThreshold: z
      .number()
      .gt(0)
      .default(1)
      .describe('flag when own-label share / best other share is below this'),
    seed: z.number().int().min(0).max(0xffffffff).default(0).describe('seed of the 2-means start'),
  })
  .describe('activation clustering');
export type ActivationClusteringConfig = z.infer<typeof activationClusteringSchema>;

/** The top `k` principal components of the n × d rows, as the n × k projections. */
export function pcaProject(x: Float64Array, n: number, d: number, k: number): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const cov = Matrix.zeros(d, d);
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < d; a++) {
      const xa = x[i * d + a] - mean[a];
      if (xa === 0) continue;
      for (let b = a; b < d; b++) cov.set(a, b, cov.get(a, b) + xa * (x[i * d + b] - mean[b]));
    }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov.set(a, b, cov.get(b, a));
  const evd = new EVD(cov, { assumeSymmetric: true });
  const order = evd.realEigenvalues
    .map((_, i) => i)
    .sort((i, j) => evd.realEigenvalues[j] - evd.realEigenvalues[i]);
  const keep = order.slice(0, Math.min(k, d));
  const vectors = evd.eigenvectorMatrix;
  const out = new Float64Array(n * keep.length);
  for (let i = 0; i < n; i++) {
    keep.forEach((c, m) => {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x[i * d + j] - mean[j]) * vectors.get(j, c);
      out[i * keep.length + m] = s;
    });
  }
  return out;
}

const distance = (x: Float64Array, i: number, j: number, d: number) => {
  let s = 0;
  for (let m = 0; m < d; m++) {
    const t = x[i * d + m] - x[j * d + m];
    s += t * t;
  }
  return Math.sqrt(s);
};

/**
 * Mean silhouette of a two-cluster assignment of the n × d rows: per point (b − a)/max(a, b), a
 * its mean distance to its own cluster's other points, b to the other cluster's; a point alone in
 * its cluster counts 0.
 */
export function silhouette(x: Float64Array, n: number, d: number, cluster: ArrayLike<number>) {
  const size = [0, 0];
  for (let i = 0; i < n; i++) size[cluster[i]]++;
  if (size[0] === 0 || size[1] === 0) return 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    const sum = [0, 0];
    for (let j = 0; j < n; j++) if (j !== i) sum[cluster[j]] += distance(x, i, j, d);
    const own = cluster[i];
    if (size[own] === 1) continue;
    const a = sum[own] / (size[own] - 1);
    const b = sum[1 - own] / size[1 - own];
    const m = Math.max(a, b);
    total += m === 0 ? 0 : (b - a) / m;
  }
  return total / n;
}

interface ClassSplit {
  y: number;
  rows: number[];
  /** Rows (training-set indices) of the smaller cluster. */
  small: number[];
  margin: Float64Array;
  relativeSize: number;
  silhouette: number;
  suspicious: boolean;
}

function splitClass(
  features: Float64Array,
  d: number,
  y: number,
  rows: number[],
  c: ActivationClusteringConfig,
): ClassSplit {
  const n = rows.length;
  const k = Math.min(c.dims, d);
  const reduced = pcaProject(pickRows(features, d, rows), n, d, k);
  const points = Array.from({ length: n }, (_, i) =>
    Array.from(reduced.subarray(i * k, (i + 1) * k)),
  );
  const r = kmeans(points, 2, { seed: c.seed + y, initialization: 'kmeans++', maxIterations: 300 });
  const size = [0, 0];
  for (const a of r.clusters) size[a]++;
  const smallId = size[0] <= size[1] ? 0 : 1;
  const centre = r.centroids;
  const margin = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let dSmall = 0;
    let dLarge = 0;
    for (let m = 0; m < k; m++) {
      dSmall += (points[i][m] - centre[smallId][m]) ** 2;
      dLarge += (points[i][m] - centre[1 - smallId][m]) ** 2;
    }
    dSmall = Math.sqrt(dSmall);
    dLarge = Math.sqrt(dLarge);
    margin[i] = dSmall + dLarge === 0 ? 0 : (dLarge - dSmall) / (dSmall + dLarge);
  }
  const relativeSize = size[smallId] / n;
  const s = silhouette(reduced, n, k, r.clusters);
  return {
    y,
    rows,
    small: rows.filter((_, i) => r.clusters[i] === smallId),
    margin,
    relativeSize,
    silhouette: s,
    suspicious: relativeSize <= c.sizeThreshold && s >= c.silhouetteThreshold,
  };
}

/** Votes of the members of each suspicious cluster (class → count), by `classify`. */
type Votes = Map<number, Float64Array>;

/** The ratio own-label votes / best other class's votes, and that class. */
function verdict(votes: Float64Array, own: number): { ratio: number; to: number } {
  let to = -1;
  for (let y = 0; y < votes.length; y++) {
    if (y !== own && (to < 0 || votes[y] > votes[to])) to = y;
  }
  return { ratio: to < 0 || votes[to] === 0 ? Infinity : votes[own] / votes[to], to };
}

/** The examples of every suspicious cluster (to leave out of the reclassifier). */
function excludedSet(n: number, splits: ClassSplit[]): Uint8Array {
  const excluded = new Uint8Array(n);
  for (const s of splits) if (s.suspicious) for (const i of s.small) excluded[i] = 1;
  return excluded;
}

/** Each suspicious cluster's members classified by the nearest class mean of the features. */
function classMeanVotes(
  features: Float64Array,
  d: number,
  labels: ArrayLike<number>,
  numClasses: number,
  splits: ClassSplit[],
): Votes {
  const excluded = excludedSet(labels.length, splits);
  const means = new Float64Array(numClasses * d);
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    if (excluded[i]) continue;
    counts[labels[i]]++;
    for (let j = 0; j < d; j++) means[labels[i] * d + j] += features[i * d + j];
  }
  for (let y = 0; y < numClasses; y++) {
    for (let j = 0; j < d; j++) means[y * d + j] /= Math.max(counts[y], 1);
  }
  const out: Votes = new Map();
  for (const s of splits) {
    if (!s.suspicious) continue;
    const votes = new Float64Array(numClasses);
    for (const i of s.small) {
      let best = -1;
      let bestD = Number.POSITIVE_INFINITY;
      for (let y = 0; y < numClasses; y++) {
        if (counts[y] === 0) continue;
        let dist = 0;
        for (let j = 0; j < d; j++) dist += (features[i * d + j] - means[y * d + j]) ** 2;
        if (dist < bestD) {
          bestD = dist;
          best = y;
        }
      }
      votes[best]++;
    }
    out.set(s.y, votes);
  }
  return out;
}

/** Each suspicious cluster's members classified by a fresh model trained without any of them. */
async function retrainVotes(
  model: Classifier,
  data: Dataset,
  splits: ClassSplit[],
  c: ActivationClusteringConfig,
  ctx: RetrainContext,
): Promise<Votes> {
  const out: Votes = new Map();
  if (!splits.some((s) => s.suspicious)) return out;
  const excluded = excludedSet(data.shape[0], splits);
  const keep: number[] = [];
  for (let i = 0; i < excluded.length; i++) if (!excluded[i]) keep.push(i);
  const lm = await freshCopy(layersModelOf(model, 'activation clustering'), c.seed);
  const tc = model as TfjsClassifier;
  const fresh = new TfjsClassifier(lm, { bounds: tc.bounds, mean: tc.mean, std: tc.std });
  try {
    await trainModel(
      lm,
      selectExamples(data, keep),
      { epochs: c.retrainEpochs, batchSize: c.batchSize, lr: c.lr, seed: c.seed },
      {
        pool: ctx.pool,
        onBatch: (b) =>
          ctx.onProgress?.(0.5 + (0.5 * (b.epoch - 1 + b.batch / b.numBatches)) / c.retrainEpochs),
      },
    );
    for (const s of splits) {
      if (!s.suspicious) continue;
      const members = selectExamples(data, s.small);
      const p = await predictClasses(fresh, members);
      const votes = new Float64Array(data.numClasses);
      for (const y of p) votes[y]++;
      out.set(s.y, votes);
    }
  } finally {
    fresh.dispose();
  }
  return out;
}

/** Predicted classes of `data` under `model`, in batches. */
async function predictClasses(model: Classifier, data: Dataset): Promise<Int32Array> {
  const n = data.shape[0];
  const per = data.x.length / Math.max(n, 1);
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += 256) {
    const size = Math.min(256, n - s);
    const pred = tf.tidy(() =>
      tf.argMax(
        model.logits(
          tf.tensor(data.x.subarray(s * per, (s + size) * per), [size, ...data.shape.slice(1)]),
        ),
        1,
      ),
    );
    out.set(pred.dataSync() as Int32Array, s);
    pred.dispose();
  }
  return out;
}

/**
 * Activation clustering on the training set `data` with the features of `model` (whose
 * architecture, with `reclassify: 'retrain'`, is retrained from fresh weights).
 */
export async function activationClustering(
  model: Classifier,
  data: Dataset,
  config: z.input<typeof activationClusteringSchema> = {},
  ctx: RetrainContext = {},
): Promise<InspectionResult> {
  const c = parseWith('activation clustering', activationClusteringSchema, config);
  const half = c.reclassify === 'retrain' ? 0.5 : 1;
  const { features, d } = trainingFeatures(model, data, (done, total) =>
    ctx.onProgress?.((half * done) / total),
  );
  const splits: ClassSplit[] = [];
  for (let y = 0; y < data.numClasses; y++) {
    const rows = classRows(data.labels, y);
    if (rows.length >= 3) splits.push(splitClass(features, d, y, rows, c));
  }
  const votes: Votes =
    c.reclassify === 'retrain'
      ? await retrainVotes(model, data, splits, c, ctx)
      : c.reclassify === 'class-mean'
        ? classMeanVotes(features, d, data.labels, data.numClasses, splits)
        : new Map();
  ctx.onProgress?.(1);
  const scores = new Float64Array(data.shape[0]);
  const flagged: number[] = [];
  const perClass: Record<string, number>[] = [];
  for (const s of splits) {
    const v = votes.get(s.y);
    const r = v === undefined ? undefined : verdict(v, s.y);
    const poisoned =
      s.suspicious &&
      (c.reclassify === 'none' || (r !== undefined && r.ratio < c.reclassifyThreshold));
    const small = new Set(s.small);
    s.rows.forEach((i, k) => {
      scores[i] = s.margin[k] + (poisoned && small.has(i) ? 2 : 0);
    });
    if (poisoned) flagged.push(...s.small);
    perClass.push({
      class: s.y,
      examples: s.rows.length,
      relativeSize: s.relativeSize,
      silhouette: s.silhouette,
      ...(r === undefined ? {} : { reclassifiedTo: r.to, ownToOtherRatio: r.ratio }),
      flagged: poisoned ? s.small.length : 0,
    });
  }
  flagged.sort((a, b) => a - b);
  return { method: 'activation-clustering', flagged, scores, perClass };
}
