/**
 * TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui & Jordan, "Theoretically Principled Trade-off between
 * Robustness and Accuracy", 2019). Per example:
 *   L = CE(f(x), y) + β·KL(p(x) ‖ p(x_adv)),
 * with x_adv crafted by K steps of PGD that maximise KL(p(x) ‖ p(x')) from x + 0.001·N(0, 1)
 * (Algorithm 1; the reference `trades_loss` of yaodongyu/TRADES). x_adv is a constant for the
 * weight gradient; both terms are differentiated through p(x) and p(x_adv). The reference's
 * defaults are ε = 0.031, step 0.003, K = 10, β = 1 (6 on CIFAR-10). Reported logits are clean.
 */
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, klDivergence } from '../../objectives/losses.js';
import {
  type BetaConfig,
  type BetaConfigInput,
  type BetaLoss,
  betaMethod,
  type Craft,
  craftKl,
  type RobustTraining,
  type SettingAt,
} from './adversarial.js';

export type { BetaConfig as TradesConfig, BetaConfigInput as TradesConfigInput };

/** The per-example TRADES loss `[batch]` given x_adv (a constant), and the clean logits. */
export const tradesLoss: BetaLoss = (logits, logitsAdv, labels, beta) =>
  tf.tidy(
    () =>
      tf.add(
        crossEntropy(logits, labels),
        tf.mul(klDivergence(logits, logitsAdv), beta),
      ) as tf.Tensor1D,
  );

export function createTrades(
  config: BetaConfigInput,
  settingAt?: SettingAt,
): RobustTraining & { config: BetaConfig } {
  const craft =
    (c: BetaConfig): Craft =>
    (model, x, _labels, s, rng) =>
      craftKl(model, x, c.norm, s, rng);
  return betaMethod('trades', config, settingAt, craft, tradesLoss, 'clean');
}
