/**
 * Fast Gradient Sign Method (Goodfellow, Shlens & Szegedy 2015) and its L2 variant, the fast
 * gradient method (Miyato et al. 2016): one step of size eps along the normalised gradient.
 * Threat model: white-box, L∞ or L2 ball of radius `eps`, untargeted or targeted.
 * Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32. Caller owns the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Classifier } from '../../models/classifier.js';
import type { AttackResult, AttackRunOptions } from '../result.js';
import { evasionAttack } from './factory.js';
import { ascentStep, gradientAttack, type StepRule } from './gradient-loop.js';
import { attackGoal, parseWith } from './objective.js';

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

/** FGSM's result: the attack result, plus the parsed config. */
export type FgsmResult = AttackResult & { config: FgsmConfig };

/** `createFgsm` validates a config once (the attack it returns does not re-check it); `fgsm`: FGSM / FGM: x + eps·normalize(∇ objective), then projected and clipped. */
export const { create: createFgsm, call: fgsm } = evasionAttack(
  (config: FgsmConfigInput) => parseWith('fgsm', fgsmConfigSchema, config),
  runFgsm,
);

/** One step of length eps from x, through the shared loop (abort, progress, final projection). */
async function runFgsm(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: FgsmConfig,
  opts: AttackRunOptions,
): Promise<FgsmResult> {
  const goal = attackGoal('fgsm', model, x, labels, c.targeted, opts.targetLabels);
  const rule: StepRule<tf.Tensor> = {
    start: () => tf.clone(x),
    // The loop projects once, after the step (a second projection could move L2 points by an ulp).
    step: (xAdv) =>
      ascentStep(
        model,
        x,
        xAdv,
        { goal, targeted: c.targeted, loss: c.loss },
        {
          ...c,
          stepSize: c.eps,
          constrain: 'none',
        },
      ),
    iterate: (xAdv) => xAdv,
    dispose: (xAdv) => xAdv.dispose(),
  };
  // Deterministic: no randomness, seed 0.
  const settings = { ...c, ...opts, steps: 1, restarts: 1, seed: 0, gradientsPerRun: 1 };
  return { ...(await gradientAttack(model, x, goal, rule, settings)), config: c };
}
