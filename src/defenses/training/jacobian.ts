/**
 * Jacobian regularisation with random projections (Hoffman, Roberts & Yaida, "Robust Learning
 * with Jacobian Regularization", 2019, Alg. 1). Per example, with J = ∂z/∂x the Jacobian of the
 * C logits and v₁..v_n drawn uniformly on the unit sphere of R^C:
 *   L = CE(f(x), y) + λ·(C/n)·Σ_p ‖v_p^T J‖₂²,
 * an unbiased estimate of CE + λ·‖J‖_F² (E[v v^T] = I/C). Each v_p^T J is one input gradient
 * (of v_p·z); the weight gradient goes through it (second derivatives; see second-order.ts).
 * The projections come from the seeded Rng, a constant for the weights.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { crossEntropy } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import type { RobustTraining } from './adversarial.js';
import { squaredNorms } from './input-gradient.js';
import { secondOrderMethod } from './second-order.js';

export const jacobianConfigSchema = z
  .object({
    /** Weight λ of the squared Frobenius norm. */
    lambda: z.number().min(0),
    /** Random projections n per example (Hoffman et al. use 1). */
    projections: z.number().int().min(1).default(1),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type JacobianConfig = z.infer<typeof jacobianConfigSchema>;

/** Unit vectors `[batch, c]`, uniform on the sphere (normalised Gaussians). */
function unitVectors(batch: number, c: number, rng: Rng): tf.Tensor2D {
  return tf.tidy(() => {
    const g = tf.randomNormal([batch, c], 0, 1, 'float32', rng.nextSeed());
    return tf.div(g, tf.norm(g, 2, 1, true)) as tf.Tensor2D;
  });
}

/** The estimate (C/n)·Σ_p ‖v_p^T J‖² per example `[batch]`, differentiable in the weights. */
export function jacobianPenalty(
  model: tfl.LayersModel,
  x: tf.Tensor,
  projections: number,
  rng: Rng,
  training = true,
): tf.Tensor1D {
  return tf.tidy(() => {
    const batch = x.shape[0];
    const terms: tf.Tensor1D[] = [];
    let c = 0;
    for (let p = 0; p < projections; p++) {
      const grad = tf.grad((z: tf.Tensor) => {
        const logits = model.apply(z, { training }) as tf.Tensor2D;
        c = logits.shape[1];
        const v = unitVectors(batch, c, rng);
        return tf.sum(tf.mul(v, logits));
      })(x);
      terms.push(squaredNorms(grad));
    }
    return tf.mul(tf.addN(terms), c / projections) as tf.Tensor1D;
  });
}

export function createJacobianRegularizer(
  config: z.input<typeof jacobianConfigSchema>,
): RobustTraining & { config: JacobianConfig } {
  const c = parseWith('jacobian', jacobianConfigSchema, config);
  const rng = new Rng(c.seed);
  return secondOrderMethod('jacobian', c, c.projections + 2, (model, x, labels) =>
    tf.tidy(() => {
      const logits = model.apply(x, { training: true }) as tf.Tensor2D;
      const ce = crossEntropy(logits, labels);
      if (c.lambda === 0) return { loss: ce, logits };
      const penalty = jacobianPenalty(model, x, c.projections, rng);
      return { loss: tf.add(ce, tf.mul(penalty, c.lambda)) as tf.Tensor1D, logits };
    }),
  );
}
