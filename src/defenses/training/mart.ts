/**
 * MART (Wang, Zou, Yi, Bailey, Ma & Gu, "Improving Adversarial Robustness Requires Revisiting
 * Misclassified Examples", ICLR 2020). Per example, with p = softmax(f(x)), p' = softmax(f(x_adv)):
 *   L = BCE(p', y) + β·KL(p ‖ p')·(1 − p_y),
 *   BCE(p', y) = −log p'_y − log(1 − max_{j≠y} p'_j),
 * the boosted cross-entropy on the adversarial example plus a KL term weighted towards
 * misclassified examples. As in the reference `mart_loss` (YisenWang/MART): x_adv is CE-PGD from
 * x + 0.001·N(0, 1); the runner-up class j is chosen by value (a constant index); the log guard is
 * log(1.0001 − p'_j) and the weight 1.0000001 − p_y. Defaults there: ε = 8/255, K = 10, β = 6.
 * x_adv is a constant for the weight gradient. Reported logits are the adversarial ones.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { crossEntropy, klDivergence } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import {
  adversarialMethod,
  craftPgd,
  type RobustTraining,
  type SettingAt,
  threatSchema,
} from './adversarial.js';

export const martConfigSchema = threatSchema
  .extend({
    /** Weight β of the misclassification-aware KL term. */
    beta: z.number().min(0).default(6),
  })
  .strict();
export type MartConfig = z.infer<typeof martConfigSchema>;
export type MartConfigInput = z.input<typeof martConfigSchema>;

/** The per-example MART loss `[batch]` from clean and adversarial logits. */
export function martLoss(
  logits: tf.Tensor2D,
  logitsAdv: tf.Tensor2D,
  labels: tf.Tensor1D,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), k);
    const pAdv = tf.softmax(logitsAdv);
    // The most likely wrong class under p' (an index, so no gradient flows through the choice).
    const runnerUp = tf.argMax(tf.sub(pAdv, tf.mul(oneHot, 2)), 1);
    const pRunnerUp = tf.sum(tf.mul(pAdv, tf.oneHot(runnerUp, k)), 1);
    const boosted = tf.sub(
      crossEntropy(logitsAdv, labels),
      tf.log(tf.add(tf.sub(1.0001, pRunnerUp), 1e-12)),
    );
    const pY = tf.sum(tf.mul(tf.softmax(logits), oneHot), 1);
    const kl = tf.mul(klDivergence(logits, logitsAdv), tf.sub(1.0000001, pY));
    return tf.add(boosted, tf.mul(kl, beta)) as tf.Tensor1D;
  });
}

export function createMart(
  config: MartConfigInput,
  settingAt?: SettingAt,
): RobustTraining & { config: MartConfig } {
  const c = parseWith('mart', martConfigSchema, config);
  // K attack gradients, then the weight gradient's backward pass through both branches.
  return adversarialMethod(
    'mart',
    c,
    settingAt,
    2,
    (model, x, labels, s, rng) => craftPgd(model, x, labels, c.norm, s, rng, 'gaussian'),
    (model, x, xAdv, labels) => {
      const logits = model.apply(x, { training: true }) as tf.Tensor2D;
      const logitsAdv = model.apply(xAdv, { training: true }) as tf.Tensor2D;
      return { loss: martLoss(logits, logitsAdv, labels, c.beta), logits: logitsAdv };
    },
  );
}
