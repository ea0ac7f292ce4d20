/**
 * Label flipping: the attacker changes labels only, never images.
 * - random: `round(rate·n)` examples drawn uniformly, each relabelled with a class drawn
 *   uniformly from the other K − 1;
 * - class-pair: `round(rate·n_source)` examples of class `source` relabelled `target` (`rate` is
 *   the fraction of the source class, which is all the attack can touch);
 * - adversarial: the `round(rate·n)` examples a reference model is most confident about —
 *   highest softmax probability of their given label — each relabelled with the model's
 *   most likely other class (its second choice when it classifies the example correctly).
 * Threat model: the attacker controls the labels of a fraction (at most half) of the training set.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { type Dataset, exampleSize } from '../../data/dataset.js';
import { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import { seedSchema } from '../../objectives/threat-model.js';
import { parseWith } from '../../options.js';
import { type PoisonResult, poisonResult } from './poison-manifest.js';
import {
  checkClass,
  checkTrainingSet,
  drawIndices,
  indicesWhere,
  optionError,
  type PoisonContext,
  poisonCount,
  poisonedCopy,
  requireModel,
  step,
} from './selection.js';

const flipRate = z
  .number()
  .min(0)
  .max(0.5)
  .default(0.1)
  .describe('fraction of the training set poisoned, in [0, 1] (label flipping: at most 0.5)');
const classOption = (what: string) =>
  z
    .number({ error: (issue) => (issue.input === undefined ? 'is required' : undefined) })
    .int()
    .min(0)
    .describe(what);

export const randomFlipSchema = z.strictObject({ rate: flipRate, seed: seedSchema.default(0) });
export const pairFlipSchema = z.strictObject({
  rate: flipRate.describe('fraction of the source class relabelled, in [0, 0.5]'),
  seed: seedSchema.default(0),
  source: classOption('class whose examples are relabelled'),
  target: classOption('class the attacker wants predicted'),
});
export const adversarialFlipSchema = randomFlipSchema;

export type RandomFlipConfig = z.infer<typeof randomFlipSchema>;
export type PairFlipConfig = z.infer<typeof pairFlipSchema>;

/** Examples per forward pass of the reference model. */
const BATCH = 256;

/** Random label flipping. */
export function randomFlip(data: Dataset, config: z.input<typeof randomFlipSchema>): PoisonResult {
  const c = parseWith('label-flip', randomFlipSchema, config);
  checkTrainingSet('label-flip', data);
  const rng = new Rng(c.seed);
  const n = data.labels.length;
  const indices = drawIndices(
    'label-flip',
    indicesWhere(data.labels, () => true),
    poisonCount(c.rate, n),
    rng.fork(),
  );
  const relabel = rng.fork();
  const k = data.numClasses;
  const out = poisonedCopy(data, 'label-flip');
  for (const i of indices) out.labels[i] = (data.labels[i] + 1 + relabel.int(k - 1)) % k;
  return poisonResult(data, out, {
    attack: 'label-flip',
    options: c,
    seed: c.seed,
    poisonedIndices: indices,
    labelsChanged: true,
  });
}

/** Class-pair label flipping: source → target. */
export function pairFlip(data: Dataset, config: z.input<typeof pairFlipSchema>): PoisonResult {
  const owner = 'label-flip-pair';
  const c = parseWith(owner, pairFlipSchema, config);
  checkTrainingSet(owner, data);
  checkClass(owner, 'source', c.source, data);
  checkClass(owner, 'target', c.target, data);
  if (c.source === c.target) {
    throw optionError(owner, 'target', `must differ from source (both ${c.source})`);
  }
  const sources = indicesWhere(data.labels, (y) => y === c.source);
  const indices = drawIndices(owner, sources, poisonCount(c.rate, sources.length), new Rng(c.seed));
  const out = poisonedCopy(data, owner);
  for (const i of indices) out.labels[i] = c.target;
  return poisonResult(data, out, {
    attack: owner,
    options: c,
    seed: c.seed,
    poisonedIndices: indices,
    targetClass: c.target,
    sourceClass: c.source,
    labelsChanged: true,
  });
}

/**
 * The reference model's softmax probability of each example's label, and its most likely other
 * class, computed in float64 from the logits (read once per batch: a boundary).
 */
export async function labelConfidence(
  model: Classifier,
  data: Dataset,
  ctx: PoisonContext = {},
): Promise<{ confidence: Float64Array; runnerUp: Int32Array }> {
  const n = data.labels.length;
  const size = exampleSize(data);
  const k = data.numClasses;
  const confidence = new Float64Array(n);
  const runnerUp = new Int32Array(n);
  for (let start = 0; start < n; start += BATCH) {
    const m = Math.min(BATCH, n - start);
    const x = tf.tensor(data.x.subarray(start * size, (start + m) * size), [
      m,
      ...data.shape.slice(1),
    ]);
    const logits = tf.tidy(() => model.logits(x));
    const scores = await logits.data();
    tf.dispose([x, logits]);
    for (let i = 0; i < m; i++) {
      const y = data.labels[start + i];
      let max = -Infinity;
      for (let j = 0; j < k; j++) max = Math.max(max, scores[i * k + j]);
      let total = 0;
      let best = -1;
      for (let j = 0; j < k; j++) {
        total += Math.exp(scores[i * k + j] - max);
        if (j !== y && (best < 0 || scores[i * k + j] > scores[i * k + best])) best = j;
      }
      confidence[start + i] = Math.exp(scores[i * k + y] - max) / total;
      runnerUp[start + i] = best;
    }
    await step(ctx, start + m, n);
  }
  return { confidence, runnerUp };
}

/** Adversarial label flipping against the reference model `ctx.model`. */
export async function adversarialFlip(
  data: Dataset,
  config: z.input<typeof adversarialFlipSchema>,
  ctx: PoisonContext,
): Promise<PoisonResult> {
  const owner = 'label-flip-adversarial';
  const c = parseWith(owner, adversarialFlipSchema, config);
  checkTrainingSet(owner, data);
  const model = requireModel(owner, ctx, data);
  const { confidence, runnerUp } = await labelConfidence(model, data, ctx);
  const n = data.labels.length;
  // Most confident first; ties keep the lower index first (a stable order).
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => confidence[b] - confidence[a] || a - b,
  );
  const indices = order.slice(0, poisonCount(c.rate, n)).sort((a, b) => a - b);
  const out = poisonedCopy(data, owner);
  for (const i of indices) out.labels[i] = runnerUp[i];
  return poisonResult(data, out, {
    attack: owner,
    options: c,
    seed: c.seed,
    poisonedIndices: indices,
    labelsChanged: true,
  });
}
