/**
 * Deep Partition Aggregation (Levine & Feizi, "Deep Partition Aggregation: Provable Defenses
 * against General Poisoning Attacks", ICLR 2021): a certified defence against poisoning.
 *
 * Partition. Example x goes to partition h(x) mod k, h = FNV-1a (32-bit) over its bytes
 * clamp(round(255·v), 0, 255), one per value in storage order — its content alone, never its
 * index or label. So inserting or removing one example changes the training set of one partition
 * only, relabelling one changes one (it stays where it was), and changing its pixels is a removal
 * plus an insertion (two partitions at most). Within a partition the examples are put in a
 * canonical order (hash, then values, then label) before training, so each base classifier is a
 * function of its partition's set, not of where the examples sat in the data set (the authors sort
 * each partition for the same reason).
 *
 * Vote. Base classifier i (seeded (seed + i) mod 2^32) votes its argmax; n_c counts the votes
 * for class c; the prediction c is the plurality, ties to the smaller class.
 *
 * Certificate (Theorem 1). The prediction holds for every training set U with |T ⊖ U| ≤ ρ,
 *   ρ = ⌊(n_c − max_{c′≠c} (n_c′ + [c′ < c])) / 2⌋,
 * since each inserted or removed example moves at most one vote, which closes the gap by at most
 * 2. ρ ≥ 0 whenever c won the vote (it beats a smaller class, at least ties a larger one). ρ counts
 * insertions plus removals: a relabelled example counts once, a modified one twice.
 *
 * Curve and median. A misclassified test example gets ρ = −1 (certified at no size). The curve is
 * the share of test examples correct with ρ ≥ r for r = 0, 1, …, max ρ. The median certified
 * poison size is the largest r whose certified accuracy is at least 1/2, or −1 when fewer than
 * half are correct; equivalently the per-example ρ at sorted position ⌊n/2⌋ (the median; the upper
 * one for even n). The authors' certify.py prints the number of sizes 0…r at ≥ 50%: this plus one.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { type Dataset, exampleSize, selectExamples } from '../data/index.js';
import type { WorkerPool } from '../engine/pool.js';
import { ParryError } from '../errors.js';
import { ARCHITECTURES, buildArchitecture } from '../models/architectures.js';
import { parseWith } from '../options.js';
import { trainModel } from '../train/loop.js';
import { certifiedCurve } from './curve.js';

export const dpaSchema = z
  .strictObject({
    /** Partitions (base classifiers). */
    k: z.number().int().min(1).max(10_000).default(50).describe('partitions (base classifiers)'),
    arch: z
      .enum(ARCHITECTURES.map((a) => a.name) as [string, ...string[]])
      .default('cnn-tiny')
      .describe('architecture of every base classifier'),
    epochs: z.number().int().min(1).default(10).describe('epochs per base classifier'),
    batchSize: z.number().int().min(1).default(64).describe('batch size'),
    lr: z.number().positive().default(1e-3).describe('learning rate (Adam)'),
    /** Base classifier i is initialised and shuffled from (seed + i) mod 2^32. */
    seed: z.number().int().min(0).max(0xffffffff).default(0).describe('base seed'),
  })
  .describe('deep partition aggregation');
export type DpaConfig = z.infer<typeof dpaSchema>;

/** FNV-1a (32-bit: offset basis 0x811c9dc5, prime 0x01000193) of the bytes round(255·v). */
export function contentHash(values: ArrayLike<number>): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < values.length; i++) {
    h ^= Math.max(0, Math.min(255, Math.round(255 * values[i])));
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The partition, in [0, k), of one example given its values (pixels in [0, 1]). */
export function partitionOf(values: ArrayLike<number>, k: number): number {
  if (!Number.isInteger(k) || k < 1) {
    throw new ParryError('BAD_OPTION', `partitionOf: k must be an integer >= 1, got ${k}`);
  }
  return contentHash(values) % k;
}

/** The partition of every example of `data` (a function of each example's content alone). */
export function partitionDataset(data: Dataset, k: number): Int32Array {
  const per = exampleSize(data);
  const out = new Int32Array(data.shape[0]);
  for (let i = 0; i < out.length; i++) {
    out[i] = partitionOf(data.x.subarray(i * per, (i + 1) * per), k);
  }
  return out;
}

/** Plurality vote of `counts` (ties to the smaller class) and its certified poison size ρ. */
export function dpaCertificate(counts: ArrayLike<number>): {
  prediction: number;
  certified: number;
} {
  if (counts.length === 0 || !Array.from(counts).every((n) => Number.isInteger(n) && n >= 0)) {
    throw new ParryError(
      'BAD_INPUT',
      `dpaCertificate: counts must be non-negative integers, one per class, got [${Array.from(counts).join(', ')}]`,
    );
  }
  let c = 0;
  for (let j = 1; j < counts.length; j++) if (counts[j] > counts[c]) c = j;
  let rival = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < counts.length; j++) {
    if (j !== c) rival = Math.max(rival, counts[j] + (j < c ? 1 : 0));
  }
  // One class: no other prediction exists, so none can be forced.
  const certified = counts.length === 1 ? Infinity : Math.floor((counts[c] - rival) / 2);
  return { prediction: c, certified };
}

export interface DpaEnsemble {
  models: tfl.LayersModel[];
  /** Training examples per partition. */
  sizes: number[];
  config: DpaConfig;
}

/** Rows of each partition, each in the canonical order: hash, then values, then label. */
function partitionRows(data: Dataset, k: number): number[][] {
  const per = exampleSize(data);
  const n = data.shape[0];
  const hash = new Uint32Array(n);
  const rows: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < n; i++) {
    hash[i] = contentHash(data.x.subarray(i * per, (i + 1) * per));
    rows[hash[i] % k].push(i);
  }
  const byContent = (a: number, b: number): number => {
    if (hash[a] !== hash[b]) return hash[a] - hash[b];
    for (let t = 0; t < per; t++) {
      const d = data.x[a * per + t] - data.x[b * per + t];
      if (d !== 0) return d;
    }
    return data.labels[a] - data.labels[b];
  };
  for (const r of rows) r.sort(byContent);
  return rows;
}

/**
 * Trains the k base classifiers of DPA on `data` with the project's training loop (Adam). An
 * empty partition keeps its untrained model (it still votes; the certificate holds for any
 * vote). `onProgress(done, k)` after each partition. The caller owns (and disposes) the models.
 */
export async function trainDpa(
  data: Dataset,
  config: z.input<typeof dpaSchema> = {},
  ctx: {
    pool?: WorkerPool;
    onProgress?: (done: number, total: number) => void;
    signal?: AbortSignal;
  } = {},
): Promise<DpaEnsemble> {
  const c = parseWith('dpa', dpaSchema, config);
  const rows = partitionRows(data, c.k);
  const models: tfl.LayersModel[] = [];
  try {
    for (let i = 0; i < c.k; i++) {
      const seed = (c.seed + i) >>> 0;
      const lm = buildArchitecture(c.arch, {
        inputShape: data.shape.slice(1),
        numClasses: data.numClasses,
        seed,
      });
      models.push(lm);
      if (rows[i].length > 0) {
        await trainModel(
          lm,
          selectExamples(data, rows[i], `${data.name} partition ${i}`),
          { epochs: c.epochs, batchSize: c.batchSize, lr: c.lr, seed },
          { pool: ctx.pool, signal: ctx.signal },
        );
      }
      ctx.onProgress?.(i + 1, c.k);
    }
  } catch (e) {
    for (const m of models) m.dispose();
    throw e;
  }
  return { models, sizes: rows.map((r) => r.length), config: c };
}

export interface DpaCertification {
  /** Per test example: its label, the votes per class, the prediction, ρ (−1 if wrong). */
  labels: number[];
  counts: number[][];
  predictions: number[];
  certified: number[];
  accuracy: number;
  /** Share of examples correct and certified at each size 0, 1, …, the largest certified. */
  curve: { size: number; accuracy: number }[];
  /** Largest size with certified accuracy ≥ 1/2 (−1 if accuracy < 1/2); see the module comment. */
  medianCertified: number;
}

/**
 * Votes of the ensemble on `test` (batches of 256, each model's argmax read back with dataSync;
 * every tensor it makes it frees), and the certificate of every example.
 */
export function certifyDpa(models: readonly tfl.LayersModel[], test: Dataset): DpaCertification {
  const fail = (what: string) => new ParryError('BAD_INPUT', `certifyDpa: ${what}`);
  if (models.length === 0) throw fail('no base classifier');
  const classes = test.numClasses;
  if (!(classes >= 2)) throw fail(`test set '${test.name}' needs >= 2 classes, got ${classes}`);
  for (const [i, m] of models.entries()) {
    const shape = m.outputs[0].shape;
    const out = shape[shape.length - 1];
    if (out !== classes)
      throw fail(`model ${i} has ${out} outputs, the test set ${classes} classes`);
  }
  const n = test.shape[0];
  const per = exampleSize(test);
  const counts = Array.from({ length: n }, () => new Array<number>(classes).fill(0));
  const BATCH = 256;
  for (let s = 0; s < n; s += BATCH) {
    const size = Math.min(BATCH, n - s);
    const x = tf.tensor(test.x.subarray(s * per, (s + size) * per), [size, ...test.shape.slice(1)]);
    try {
      for (const m of models) {
        const pred = tf.tidy(() => tf.argMax(m.apply(x) as tf.Tensor, 1));
        const p = pred.dataSync();
        pred.dispose();
        for (let i = 0; i < size; i++) counts[s + i][p[i]]++;
      }
    } finally {
      x.dispose();
    }
  }
  const labels = Array.from(test.labels);
  const predictions: number[] = [];
  const certified: number[] = [];
  counts.forEach((cnt, i) => {
    const r = dpaCertificate(cnt);
    predictions.push(r.prediction);
    certified.push(r.prediction === labels[i] ? r.certified : -1);
  });
  const top = certified.reduce((a, b) => Math.max(a, b), 0);
  const sizes = Array.from({ length: top + 1 }, (_, r) => r);
  const curve = certifiedCurve(predictions, certified, labels, sizes).map((p) => ({
    size: p.radius,
    accuracy: p.accuracy,
  }));
  const correct = predictions.filter((p, i) => p === labels[i]).length;
  // The value at sorted position ⌊n/2⌋ is the largest r with 2·#{ρ ≥ r} ≥ n (module comment).
  const sorted = [...certified].sort((a, b) => a - b);
  return {
    labels,
    counts,
    predictions,
    certified,
    accuracy: n === 0 ? 0 : correct / n,
    curve,
    medianCertified: n === 0 ? -1 : sorted[n >> 1],
  };
}
