/**
 * Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy 2015) and its L2 variant, the fast
 * gradient method (Miyato et al. 2016): one step of size eps along the normalised gradient.
 * Threat model: white-box, L∞ or L2 ball of radius `eps`, untargeted or targeted.
 * Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32. Caller owns the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Classifier } from '../../models/classifier.js';
import { evasionAttack } from './factory.js';
import { attackGoal, attackObjective, parseWith } from './objective.js';
import { enforceThreatModel, normalizeGradient } from './projection.js';

export const fgsmConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2']).default('linf'),
    /** Descend on the loss of `targetLabels` instead of ascending on the true label's. */
    targeted: z.boolean().default(false),
    loss: z.enum(['ce', 'margin']).default('ce'),
  })
  .strict();
export type FgsmConfig = z.infer<typeof fgsmConfigSchema>;
export type FgsmConfigInput = z.input<typeof fgsmConfigSchema>;

export interface FgsmOptions {
  /** Required when `targeted`: the classes to reach, `[batch]`. */
  targetLabels?: tf.Tensor1D;
}

/** `createFgsm` validates a config once (the attack it returns does not re-check it); `fgsm`: fGSM / FGM: x + eps·normalize(∇ objective), then projected and clipped. */
export const { create: createFgsm, call: fgsm } = evasionAttack(
  (config: FgsmConfigInput) => parseWith('fgsm', fgsmConfigSchema, config),
  runFgsm,
  false,
);

function runFgsm(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: FgsmConfig,
  opts: FgsmOptions,
): tf.Tensor {
  const goal = attackGoal('fgsm', model, x, labels, c.targeted, opts.targetLabels);
  return tf.tidy(() => {
    const grad = tf.grad((z: tf.Tensor) =>
      tf.sum(attackObjective(model.logits(z), goal, c.targeted, c.loss)),
    )(x);
    const stepped = tf.add(x, tf.mul(normalizeGradient(grad, c.norm), c.eps));
    return enforceThreatModel(stepped, x, c.eps, c.norm, model.bounds);
  });
}
