/**
 * IBP certified training (Gowal et al., "On the Effectiveness of Interval Bound Propagation for
 * Training Verifiably Robust Models", 2018).
 *
 * Threat model: L∞ ball of radius eps around each training example, clipped to `bounds`.
 * Per-batch loss L = κ·CE(z(x), y) + (1 − κ)·CE(ẑ(x, ε_t), y), where z are the clean logits
 * (training mode) and ẑ the worst-case logits IBP certifies on the ball of radius ε_t: with
 * m_j the IBP lower bound of z_y − z_j (bounded through the final Dense layer, the paper's
 * "elision" of the last layer with the specification), ẑ_j = −m_j and ẑ_y = 0; CE is invariant
 * to the shift. Schedule over the run's optimizer steps (fraction t of training done): ε_t = 0
 * and κ = 1 during `warmup`, then both ramp linearly over `ramp` (ε_t to eps, κ to `kappaEnd`),
 * then stay. The bounds are tf ops on the layers' weight variables, so `optimizer.minimize`
 * differentiates through them; BatchNormalization uses its moving statistics and Dropout is the
 * identity inside the bounds (the clean term keeps both in training mode).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { ibpMargins, inputBox } from '../../models/bounds/interval.js';
import { networkOf } from '../../models/bounds/layers.js';
import { crossEntropy } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import type { LossFn, TrainProgress } from '../../train/loop.js';

export const ibpTrainingConfigSchema = z
  .object({
    /** Training radius (Gowal et al. train slightly above the radius they test, e.g. 1.1×). */
    eps: z.number().positive(),
    /** Fraction of steps with ε = 0 and κ = 1 (clean training). */
    warmup: z.number().min(0).max(1).default(0.1),
    /** Fraction of steps over which ε and κ ramp linearly. */
    ramp: z.number().min(0).max(1).default(0.5),
    /** Final weight of the clean term. */
    kappaEnd: z.number().min(0).max(1).default(0.5),
    /** Valid input range the ball is clipped to. */
    bounds: z.tuple([z.number(), z.number()]).default([0, 1]),
  })
  .strict()
  .refine((c) => c.warmup + c.ramp <= 1, { message: 'warmup + ramp must be <= 1', path: ['ramp'] })
  .refine((c) => c.bounds[0] < c.bounds[1], { message: 'bounds must be [lo, hi], lo < hi' });
export type IbpTrainingConfig = z.infer<typeof ibpTrainingConfigSchema>;
export type IbpTrainingConfigInput = z.input<typeof ibpTrainingConfigSchema>;

export interface IbpSchedule {
  /** Radius ε_t of this step. */
  eps: number;
  /** Weight κ of the clean term. */
  kappa: number;
}

/** ε_t and κ at `progress`. */
export function ibpSchedule(c: IbpTrainingConfig, progress: TrainProgress): IbpSchedule {
  const t = progress.totalSteps > 0 ? progress.step / progress.totalSteps : 1;
  if (t < c.warmup) return { eps: 0, kappa: 1 };
  const f = c.ramp === 0 ? 1 : Math.min(1, (t - c.warmup) / c.ramp);
  return { eps: f * c.eps, kappa: 1 - f * (1 - c.kappaEnd) };
}

/**
 * The per-example IBP training loss `[batch]` at one schedule point, and the clean logits.
 * x `[batch, ...]` in `bounds`, labels `[batch]` int32. Caller owns the results.
 */
export function ibpLoss(
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  s: IbpSchedule,
  bounds: [number, number],
): { loss: tf.Tensor1D; logits: tf.Tensor2D } {
  return tf.tidy(() => {
    const logits = model.apply(x, { training: true }) as tf.Tensor2D;
    const clean = crossEntropy(logits, labels);
    if (s.kappa >= 1) return { loss: clean, logits };
    const net = networkOf(model, x.shape.slice(1), 'ibpLoss');
    const { marginLower } = ibpMargins(net, inputBox(x, s.eps, bounds), labels);
    const robust = crossEntropy(tf.neg(marginLower), labels);
    const loss = tf.add(tf.mul(clean, s.kappa), tf.mul(robust, 1 - s.kappa)) as tf.Tensor1D;
    return { loss, logits };
  });
}

/** A `LossFn` for `trainModel` following the schedule of `config`. */
export function createIbpLoss(config: IbpTrainingConfigInput): {
  config: IbpTrainingConfig;
  lossFn: LossFn;
} {
  const c = parseWith('ibpTraining', ibpTrainingConfigSchema, config);
  const lossFn: LossFn = (model, x, labels, progress) =>
    ibpLoss(model, x, labels, ibpSchedule(c, progress), c.bounds);
  return { config: c, lossFn };
}
