/**
 * Substitute training with Jacobian-based dataset augmentation (Papernot, McDaniel, Goodfellow,
 * Jha, Celik & Swami 2017, "Practical Black-Box Attacks against Machine Learning", Algorithm 1).
 * Threat model: black box with labels only and a query budget; the attacker holds a small seed
 * set S₀ of in-distribution images (drawn here from the pool).
 *
 * Round ρ: train the thief F on Sρ labelled by the victim Õ, then synthesise
 *   Sρ₊₁ = Sρ ∪ { clip(x + λρ · sign(∇ₓ F(x)[Õ(x)])) : x ∈ Sρ },
 * and ask the victim to label the new points. λρ = λ · (−1)^⌊ρ/τ⌋ (the paper's periodic step
 * size, §6; cleverhans's tutorial uses τ = 3). F(x)[c] is the thief's logit of class c, as in
 * cleverhans's `jacobian_graph`. New points are clipped to the victim's bounds (cleverhans does
 * not clip; a point outside the valid range is no valid query). The set doubles each round until
 * the budget is spent: the last round synthesises only as many points (chosen at random) as
 * queries remain. The thief keeps its weights from round to round and is trained one last time
 * on the final set.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Dataset } from '../../../data/dataset.js';
import { Rng } from '../../../engine/rng.js';
import type { Classifier, QueryClassifier } from '../../../models/classifier.js';
import { rowArgmax, withBudget } from './query-budget.js';
import { fitThief, thiefClassifier } from './thief.js';
import {
  checkPool,
  poolRows,
  queryInto,
  type StealContext,
  type StolenModel,
  stealingShape,
  TransferBuffer,
  thiefBuilderFor,
} from './transfer.js';

export const jacobianSchema = z.strictObject({
  ...stealingShape,
  seedSize: z
    .number()
    .int()
    .min(1)
    .default(150)
    .describe('jacobian: size of the initial seed set S₀ drawn from the pool'),
  lambda: z.number().positive().default(0.1).describe('jacobian: augmentation step λ'),
  tau: z
    .number()
    .int()
    .min(1)
    .default(3)
    .describe('jacobian: rounds between sign flips of λ (λρ = λ·(−1)^⌊ρ/τ⌋)'),
});
export type JacobianAugmentationConfig = z.infer<typeof jacobianSchema>;

/** λρ = λ · (−1)^⌊ρ/τ⌋. */
export function lambdaAt(rho: number, lambda: number, tau: number): number {
  return Math.floor(rho / tau) % 2 === 0 ? lambda : -lambda;
}

/**
 * New points clip(x + step · sign(∇ₓ logits(x)[labels])) for a batch x `[batch, ...inputShape]`
 * and labels `[batch]` int32. Pure; the caller owns the result.
 */
export function jacobianStep(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  step: number,
): tf.Tensor {
  return tf.tidy(() => {
    const pick = tf.oneHot(tf.cast(labels, 'int32'), model.numClasses);
    // Examples are independent, so the gradient of Σᵢ F(xᵢ)[yᵢ] holds each ∇ F(xᵢ)[yᵢ].
    const grad = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(model.logits(z), pick)))(x);
    const moved = tf.add(x, tf.mul(tf.sign(grad), step));
    return tf.clipByValue(moved, model.bounds[0], model.bounds[1]);
  });
}

/** Examples per gradient batch. */
const BATCH = 256;

/** `jacobianStep` over `count` flat rows with their labels, in batches. */
function augmentRows(
  model: Classifier,
  rows: Float32Array,
  labels: Int32Array,
  step: number,
): Float32Array {
  const per = model.inputShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows.length);
  for (let start = 0; start < labels.length; start += BATCH) {
    const m = Math.min(BATCH, labels.length - start);
    const moved = tf.tidy(() =>
      jacobianStep(
        model,
        tf.tensor(rows.subarray(start * per, (start + m) * per), [m, ...model.inputShape]),
        tf.tensor1d(labels.subarray(start, start + m), 'int32'),
        step,
      ),
    );
    out.set(moved.dataSync(), start * per);
    moved.dispose();
  }
  return out;
}

/** Jacobian-based dataset augmentation (see the module comment). */
export async function jacobianAugmentation(
  victim: QueryClassifier,
  pool: Dataset,
  c: JacobianAugmentationConfig,
  ctx: StealContext = {},
): Promise<StolenModel> {
  checkPool(pool, victim, 'jacobian');
  const budgeted = withBudget(victim, c.budget);
  const rng = new Rng(c.seed);
  const model = thiefBuilderFor(ctx, c.arch, victim)(rng.nextSeed());
  const thief = thiefClassifier(model, victim.bounds, victim.numClasses);
  const per = victim.inputShape.reduce((a, b) => a * b, 1);
  const k = victim.numClasses;
  try {
    const buffer = new TransferBuffer(victim.inputShape, k);
    const seedCount = Math.min(c.seedSize, c.budget, pool.shape[0]);
    const seedRows = poolRows(pool, rng.permutation(pool.shape[0]).subarray(0, seedCount));
    await queryInto(buffer, budgeted, seedRows, seedCount, c.queryBatch, ctx);
    const sizes = [seedCount];
    for (let rho = 0; ; rho++) {
      const set = buffer.transferSet('hard');
      await fitThief(model, set, { ...c, seed: rng.nextSeed() }, ctx.signal);
      const count = Math.min(set.shape[0], budgeted.remaining);
      if (count === 0) break;
      // The last round moves a random subset when fewer queries remain than points.
      const which =
        count === set.shape[0]
          ? Int32Array.from({ length: count }, (_, i) => i)
          : rng.permutation(set.shape[0]).subarray(0, count);
      const rows = new Float32Array(count * per);
      const labels = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        rows.set(set.x.subarray(which[i] * per, (which[i] + 1) * per), i * per);
        labels[i] = rowArgmax(set.targets, k, which[i]);
      }
      const moved = augmentRows(thief, rows, labels, lambdaAt(rho, c.lambda, c.tau));
      await queryInto(buffer, budgeted, moved, count, c.queryBatch, ctx);
      sizes.push(buffer.size);
    }
    return {
      model,
      queriesUsed: budgeted.used,
      transferSize: buffer.size,
      targets: 'hard',
      details: { rounds: sizes.length - 1, setSizes: sizes },
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
