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
import { crossEntropy, klDivergence } from '../../objectives/losses.js';
import {
  type BetaConfig,
  type BetaConfigInput,
  type BetaLoss,
  betaMethod,
  type Craft,
  craftPgd,
  type RobustTraining,
  type SettingAt,
} from './adversarial.js';

export type { BetaConfig as MartConfig, BetaConfigInput as MartConfigInput };

/** The per-example MART loss `[batch]` from clean and adversarial logits. */
export const martLoss: BetaLoss = (logits, logitsAdv, labels, beta) => {
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
};

export function createMart(
  config: BetaConfigInput,
  settingAt?: SettingAt,
): RobustTraining & { config: BetaConfig } {
  const craft =
    (c: BetaConfig): Craft =>
    (model, x, labels, s, rng) =>
      craftPgd(model, x, labels, c.norm, s, rng, 'gaussian');
  return betaMethod('mart', config, settingAt, craft, martLoss, 'adversarial');
}
