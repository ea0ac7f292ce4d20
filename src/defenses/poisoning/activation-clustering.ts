/**
 * Activation clustering (Chen et al., "Detecting Backdoor Attacks on Deep Neural Networks by
 * Activation Clustering", 2018). Per class (by the given label): the penultimate activations,
 * reduced to `dims` dimensions (PCA here; the paper uses ICA), split in two by 2-means. A backdoor
 * shows as a small, well-separated cluster: the class is suspicious when the smaller cluster
 * holds at most `sizeThreshold` of the class and the silhouette of the split is at least
 * `silhouetteThreshold`. With `reclassify` (exclusionary reclassification), a suspicious cluster
 * is confirmed only when its members, classified by the nearest class mean of the penultimate
 * features computed without every suspicious cluster, mostly go to another class (share of
 * their own label / share of the best other class < `reclassifyThreshold`): poisons carry their
 * source class's features, a clean sub-population its own. (The paper retrains the network
 * without the cluster; the class-mean classifier is a cheap stand-in on the same features.)
 *
 * Scores: the verdict first (2 added for members of a flagged cluster), then how firmly an example
 * sits in the smaller cluster ((d_large − d_small) / (d_large + d_small), in [−1, 1], in the
 * reduced space). Threat model: backdoors whose trigger leaves its own mode in the representation.
 */
import { kmeans } from 'ml-kmeans';
import { EVD, Matrix } from 'ml-matrix';
import { z } from 'zod';
import type { Dataset } from '../../data/index.js';
import type { Classifier } from '../../models/classifier.js';
import { parseWith } from '../../options.js';
import { classRows, pickRows, trainingFeatures } from './class-features.js';
import type { InspectionResult } from './inspection.js';

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
      .boolean()
      .default(true)
      .describe('confirm a suspicious cluster by exclusionary reclassification (class means)'),
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

/**
 * Exclusionary reclassification of each suspicious split: the class means of the features without
 * every suspicious cluster; the share of a cluster's members nearest their own label's mean over
 * the share nearest the best other class's. Returns that ratio and the best other class.
 */
function reclassify(
  features: Float64Array,
  d: number,
  labels: ArrayLike<number>,
  numClasses: number,
  splits: ClassSplit[],
): Map<number, { ratio: number; to: number }> {
  const excluded = new Uint8Array(labels.length);
  for (const s of splits) if (s.suspicious) for (const i of s.small) excluded[i] = 1;
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
  const out = new Map<number, { ratio: number; to: number }>();
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
    let to = -1;
    for (let y = 0; y < numClasses; y++) {
      if (y !== s.y && (to < 0 || votes[y] > votes[to])) to = y;
    }
    out.set(s.y, { ratio: to < 0 || votes[to] === 0 ? Infinity : votes[s.y] / votes[to], to });
  }
  return out;
}

/** Activation clustering on the training set `data` with the features of `model`. */
export function activationClustering(
  model: Classifier,
  data: Dataset,
  config: z.input<typeof activationClusteringSchema> = {},
  onProgress?: (done: number, total: number) => void,
): InspectionResult {
  const c = parseWith('activation clustering', activationClusteringSchema, config);
  const { features, d } = trainingFeatures(model, data, onProgress);
  const splits: ClassSplit[] = [];
  for (let y = 0; y < data.numClasses; y++) {
    const rows = classRows(data.labels, y);
    if (rows.length >= 3) splits.push(splitClass(features, d, y, rows, c));
  }
  const re = c.reclassify
    ? reclassify(features, d, data.labels, data.numClasses, splits)
    : new Map<number, { ratio: number; to: number }>();
  const scores = new Float64Array(data.shape[0]);
  const flagged: number[] = [];
  const perClass: Record<string, number>[] = [];
  for (const s of splits) {
    const r = re.get(s.y);
    const poisoned =
      s.suspicious && (!c.reclassify || (r !== undefined && r.ratio < c.reclassifyThreshold));
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
