/**
 * Deep Partition Aggregation (Levine & Feizi, "Deep Partition Aggregation: Provable Defenses
 * against General Poisoning Attacks", ICLR 2021): a certified defence against poisoning. The
 * training set is split into k partitions by a hash of each example's content — FNV-1a (32-bit)
 * over its bytes round(255·x) — so inserting, removing or changing one example (its pixels or
 * its label) touches at most one partition; one base classifier is trained per partition; the
 * prediction is the plurality vote (ties to the smaller class). With n_c votes for the predicted
 * class c, the prediction cannot change while at most
 *   ⌊(n_c − max_{c′≠c} (n_c′ + [c′ < c])) / 2⌋
 * training examples are poisoned (each flips at most one vote from c to c′: the gap closes by 2).
 * A misclassified test example is given the certified size −1 (not correct, so certified at no
 * size); the curve is the share correct and certified at each size, and the median certified
 * poison size is the median of the per-example sizes (−1 counted as such).
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
    /** Base classifier i is initialised and shuffled from seed + i. */
    seed: z.number().int().min(0).max(0xffffffff).default(0).describe('base seed'),
  })
  .describe('deep partition aggregation');
export type DpaConfig = z.infer<typeof dpaSchema>;

/** FNV-1a (32-bit) of the bytes round(255·v) of `values`. */
export function contentHash(values: ArrayLike<number>): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < values.length; i++) {
    const byte = Math.max(0, Math.min(255, Math.round(255 * values[i])));
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The partition (in [0, k)) of every example of `data`, from its content alone. */
export function partitionOf(data: Dataset, k: number): Int32Array {
  const per = exampleSize(data);
  const n = data.shape[0];
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = contentHash(data.x.subarray(i * per, (i + 1) * per)) % k;
  return out;
}

/** Plurality vote of `counts` (ties to the smaller class) and its certified poison size. */
export function dpaCertificate(counts: ArrayLike<number>): {
  prediction: number;
  certified: number;
} {
  let c = 0;
  for (let j = 1; j < counts.length; j++) if (counts[j] > counts[c]) c = j;
  let rival = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < counts.length; j++) {
    if (j !== c) rival = Math.max(rival, counts[j] + (j < c ? 1 : 0));
  }
  const certified =
    rival === Number.NEGATIVE_INFINITY ? Infinity : Math.floor((counts[c] - rival) / 2);
  return { prediction: c, certified };
}

export interface DpaEnsemble {
  models: tfl.LayersModel[];
  /** Training examples per partition. */
  sizes: number[];
  config: DpaConfig;
}

/**
 * Trains the k base classifiers of DPA on `data`. An empty partition gets an untrained model
 * (it still votes; the certificate holds for any vote). `onProgress(done, k)` after each.
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
  const part = partitionOf(data, c.k);
  const models: tfl.LayersModel[] = [];
  const sizes: number[] = [];
  try {
    for (let i = 0; i < c.k; i++) {
      const rows: number[] = [];
      part.forEach((p, j) => {
        if (p === i) rows.push(j);
      });
      sizes.push(rows.length);
      const lm = buildArchitecture(c.arch, {
        inputShape: data.shape.slice(1),
        numClasses: data.numClasses,
        seed: c.seed + i,
      });
      models.push(lm);
      if (rows.length > 0) {
        await trainModel(
          lm,
          selectExamples(data, rows, `${data.name} partition ${i}`),
          { epochs: c.epochs, batchSize: c.batchSize, lr: c.lr, seed: c.seed + i },
          { pool: ctx.pool, signal: ctx.signal },
        );
      }
      ctx.onProgress?.(i + 1, c.k);
    }
  } catch (e) {
    for (const m of models) m.dispose();
    throw e;
  }
  return { models, sizes, config: c };
}

export interface DpaCertification {
  /** Per test example: the votes per class, the prediction, the certified size (−1 if wrong). */
  counts: number[][];
  predictions: number[];
  certified: number[];
  accuracy: number;
  /** Share of examples correct and certified at each size 0, 1, …, the largest certified. */
  curve: { size: number; accuracy: number }[];
  /** Median of the per-example certified sizes (misclassified: −1). */
  medianCertified: number;
}

/** Votes of the ensemble on `test`, and the certificate of every example. */
export function certifyDpa(models: readonly tfl.LayersModel[], test: Dataset): DpaCertification {
  if (models.length === 0) throw new ParryError('BAD_INPUT', 'dpa: no base classifier');
  const n = test.shape[0];
  const k = test.numClasses;
  const per = exampleSize(test);
  const counts = Array.from({ length: n }, () => new Array<number>(k).fill(0));
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
  const predictions: number[] = [];
  const certified: number[] = [];
  counts.forEach((cnt, i) => {
    const r = dpaCertificate(cnt);
    predictions.push(r.prediction);
    certified.push(r.prediction === test.labels[i] ? r.certified : -1);
  });
  const correct = predictions.filter((p, i) => p === test.labels[i]).length;
  const top = Math.max(0, ...certified);
  const curve = Array.from({ length: top + 1 }, (_, size) => ({
    size,
    accuracy: n === 0 ? 0 : certified.filter((r) => r >= size).length / n,
  }));
  const sorted = [...certified].sort((a, b) => a - b);
  const m = sorted.length >> 1;
  const medianCertified =
    n === 0 ? Number.NaN : n % 2 === 1 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
  return {
    counts,
    predictions,
    certified,
    accuracy: n === 0 ? 0 : correct / n,
    curve,
    medianCertified,
  };
}
