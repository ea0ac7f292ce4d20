/**
 * Label-only membership signals (Choquette-Choo, Tramèr, Carlini & Papernot 2021): what an
 * attacker who sees only the predicted label can still measure about an example.
 *
 * - Augmentation robustness: the share of augmented copies (mirror, pixel shifts) of x that the
 *   model labels y. Models fit their training examples under the augmentations they trained
 *   with, so members keep their label under more of them.
 * - Noise robustness: the share of `samples` Gaussian-noise copies x + N(0, σ²I), clipped to the
 *   bounds, labelled y — a cheap stand-in for the distance to the boundary.
 * - Boundary distance: the L2 distance from x to the nearest point HopSkipJump finds with another
 *   label (0 when x is already misclassified); members sit farther from the boundary.
 *
 * Every signal is larger for likelier members; the attack's threshold is chosen on reference
 * models' signals (see the membership thresholds), never on the target's members. Queries go
 * through `QueryClassifier.predict` and only its argmax is read, so a model that answers one-hot
 * labels serves as well as one with scores.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { type Dataset, exampleSize } from '../../data/dataset.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import type { QueryClassifier } from '../../models/classifier.js';
import { seedSchema } from '../../objectives/threat-model.js';
import { parseWith } from '../../options.js';
import { queryLabels } from '../evasion/black-box.js';
import { hopSkipJump } from '../evasion/hop-skip-jump.js';
import { applyQuery, type Query, queriesOf, querySetSchema } from './reference-models.js';

/** Rows per model call. */
const BATCH = 256;

function checkImages(data: Dataset, model: QueryClassifier, fn: string): void {
  const shape = data.shape.slice(1);
  if (!tf.util.arraysEqual(shape, model.inputShape)) {
    throw new ParryError(
      'BAD_INPUT',
      `${fn}: examples of '${data.name}' have shape [${shape.join(', ')}], the model takes [${model.inputShape.join(', ')}]`,
    );
  }
}

export const augmentationSignalSchema = z.strictObject({
  queries: querySetSchema.default('flip-shift'),
});

/**
 * Per example: the share of `queries` (augmented copies) of it that `model` labels with its
 * label, `[0, 1]`. Costs `queries.length` label queries per example.
 */
export async function augmentationSignal(
  model: QueryClassifier,
  data: Dataset,
  config: z.input<typeof augmentationSignalSchema> = {},
): Promise<Float64Array> {
  const c = parseWith('augmentation', augmentationSignalSchema, config);
  checkImages(data, model, 'augmentation');
  if (data.shape.length !== 4) {
    throw new ParryError('BAD_INPUT', `augmentation: examples of '${data.name}' must be images`);
  }
  const queries: Query[] = queriesOf(c.queries);
  const n = data.shape[0];
  const per = exampleSize(data);
  const hits = new Float64Array(n);
  for (let start = 0; start < n; start += BATCH) {
    const size = Math.min(BATCH, n - start);
    const x = tf.tensor4d(data.x.subarray(start * per, (start + size) * per), [
      size,
      ...(data.shape.slice(1) as [number, number, number]),
    ]);
    try {
      for (const q of queries) {
        const xq = applyQuery(x, q);
        const rows = xq.dataSync() as Float32Array;
        xq.dispose();
        const labels = await queryLabels(model, rows, size, BATCH);
        for (let i = 0; i < size; i++) if (labels[i] === data.labels[start + i]) hits[start + i]++;
      }
    } finally {
      x.dispose();
    }
  }
  for (let i = 0; i < n; i++) hits[i] /= queries.length;
  return hits;
}

export const noiseSignalSchema = z.strictObject({
  sigma: z.number().positive().default(0.1).describe('std of the Gaussian noise, in input units'),
  samples: z.number().int().min(1).default(20).describe('noisy copies queried per example'),
  seed: seedSchema.default(0),
});

/**
 * Per example: the share of `samples` noisy copies x + N(0, σ²I) (clipped to the bounds) that
 * `model` labels with its label. Noise from `seed`, example by example in order, so a subset's
 * signals do not depend on how it is batched.
 */
export async function noiseSignal(
  model: QueryClassifier,
  data: Dataset,
  config: z.input<typeof noiseSignalSchema> = {},
): Promise<Float64Array> {
  const c = parseWith('noise', noiseSignalSchema, config);
  checkImages(data, model, 'noise');
  const n = data.shape[0];
  const per = exampleSize(data);
  const [lo, hi] = model.bounds;
  const rng = new Rng(c.seed);
  const out = new Float64Array(n);
  const perBatch = Math.max(1, Math.floor(BATCH / c.samples));
  for (let start = 0; start < n; start += perBatch) {
    const size = Math.min(perBatch, n - start);
    const rows = new Float32Array(size * c.samples * per);
    const noise = new Float32Array(per);
    for (let i = 0; i < size; i++) {
      const x = data.x.subarray((start + i) * per, (start + i + 1) * per);
      for (let s = 0; s < c.samples; s++) {
        rng.fillNormal(noise, c.sigma);
        const o = (i * c.samples + s) * per;
        for (let d = 0; d < per; d++) rows[o + d] = Math.min(hi, Math.max(lo, x[d] + noise[d]));
      }
    }
    const labels = await queryLabels(model, rows, size * c.samples, BATCH);
    for (let i = 0; i < size; i++) {
      let hit = 0;
      for (let s = 0; s < c.samples; s++)
        if (labels[i * c.samples + s] === data.labels[start + i]) hit++;
      out[start + i] = hit / c.samples;
    }
  }
  return out;
}

export const boundarySignalSchema = z.strictObject({
  maxQueries: z
    .number()
    .int()
    .min(1)
    .default(2500)
    .describe('HopSkipJump queries per example (its whole budget)'),
  steps: z.number().int().min(0).default(20).describe('HopSkipJump iterations'),
  batchSize: z.number().int().min(1).default(64).describe('examples attacked together'),
  seed: seedSchema.default(0),
});

/**
 * Per example: the L2 distance to the closest differently-labelled point HopSkipJump (untargeted,
 * L2, decision-based) finds within `maxQueries` label queries; 0 when the example is
 * misclassified; when the attack finds no such point, the distance to the farthest corner of the
 * bounds box (an upper bound on any boundary distance). `onProgress(done, n)` after each batch.
 */
export async function boundarySignal(
  model: QueryClassifier,
  data: Dataset,
  config: z.input<typeof boundarySignalSchema> = {},
  onProgress?: (done: number, total: number) => void,
): Promise<Float64Array> {
  const c = parseWith('boundary', boundarySignalSchema, config);
  checkImages(data, model, 'boundary');
  const n = data.shape[0];
  const per = exampleSize(data);
  const [lo, hi] = model.bounds;
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += c.batchSize) {
    const size = Math.min(c.batchSize, n - start);
    const x = tf.tensor(data.x.subarray(start * per, (start + size) * per), [
      size,
      ...data.shape.slice(1),
    ]);
    const y = tf.tensor1d(Int32Array.from(data.labels.subarray(start, start + size)), 'int32');
    try {
      const r = await hopSkipJump(model, x, y, {
        norm: 'l2',
        maxQueries: c.maxQueries,
        steps: c.steps,
        seed: (c.seed + start) >>> 0,
      });
      r.xAdv.dispose();
      for (let i = 0; i < size; i++) {
        let far = 0;
        for (let d = 0; d < per; d++) {
          const v = data.x[(start + i) * per + d];
          far += Math.max(v - lo, hi - v) ** 2;
        }
        out[start + i] = r.success[i] ? r.perturbationNorms[i] : Math.sqrt(far);
      }
    } finally {
      tf.dispose([x, y]);
    }
    onProgress?.(start + size, n);
  }
  return out;
}
