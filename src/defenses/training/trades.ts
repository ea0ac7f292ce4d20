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
import { z } from 'zod';
import { crossEntropy, klDivergence } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import {
  adversarialMethod,
  craftKl,
  type RobustTraining,
  type SettingAt,
  threatSchema,
} from './adversarial.js';

export const tradesConfigSchema = threatSchema
  .extend({
    /** Weight β of the robustness (KL) term. */
    beta: z.number().min(0).default(6),
  })
  .strict();
export type TradesConfig = z.infer<typeof tradesConfigSchema>;
export type TradesConfigInput = z.input<typeof tradesConfigSchema>;

/** The per-example TRADES loss `[batch]` given x_adv (a constant), and the clean logits. */
export function tradesLoss(
  logits: tf.Tensor2D,
  logitsAdv: tf.Tensor2D,
  labels: tf.Tensor1D,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(
    () =>
      tf.add(
        crossEntropy(logits, labels),
        tf.mul(klDivergence(logits, logitsAdv), beta),
      ) as tf.Tensor1D,
  );
}

export function createTrades(
  config: TradesConfigInput,
  settingAt?: SettingAt,
): RobustTraining & { config: TradesConfig } {
  const c = parseWith('trades', tradesConfigSchema, config);
  // K attack gradients, then the weight gradient's backward pass through both branches.
  return adversarialMethod(
    'trades',
    c,
    settingAt,
    2,
    (model, x, _labels, s, rng) => craftKl(model, x, c.norm, s, rng),
    (model, x, xAdv, labels) => {
      const logits = model.apply(x, { training: true }) as tf.Tensor2D;
      const logitsAdv = model.apply(xAdv, { training: true }) as tf.Tensor2D;
      return { loss: tradesLoss(logits, logitsAdv, labels, c.beta), logits };
    },
  );
}
