/**
 * Fast adversarial training (Wong, Rice & Kolter, "Fast is better than free", 2020): one FGSM
 * step of size α = 1.25·ε from a uniform random start in the ε-ball, projected back onto the
 * ball and into bounds; training minimises CE on that point (x_adv a constant for the weights).
 * With `noise: 2, alpha: 1, project: false` it is N-FGSM (de Jorge et al., "Make Some Noise",
 * 2022): a start twice as far out and no projection, so the training point lies up to 3ε from x;
 * the stronger noise is what keeps the single step from overfitting.
 *
 * Its failure mode is catastrophic overfitting: within an epoch PGD accuracy collapses to ~0
 * while FGSM accuracy stays high (the model learns to mask the single-step gradient). Wong et
 * al. guard against it by measuring PGD accuracy on a fixed held-out batch each epoch and
 * keeping the weights from before the collapse; `detectCatastrophicOverfitting` is that test.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { ascentStep, startingPoint } from '../../attacks/evasion/gradient-loop.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { crossEntropy } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import {
  CostMeter,
  type RobustTraining,
  threatSchema,
  trainingClassifier,
  trainingLogits,
} from './adversarial.js';

export const fastTrainingConfigSchema = threatSchema
  .omit({ steps: true, stepSize: true })
  .extend({
    /** FGSM step as a multiple of eps (Wong et al.: 1.25; N-FGSM: 1). */
    alpha: z.number().positive().default(1.25),
    /** Radius of the uniform random start as a multiple of eps (Wong et al.: 1; N-FGSM: 2). */
    noise: z.number().min(0).default(1),
    /** Project the FGSM point back onto the eps-ball (Wong et al.); N-FGSM does not. */
    project: z.boolean().default(true),
  })
  .strict();
export type FastTrainingConfig = z.infer<typeof fastTrainingConfigSchema>;
export type FastTrainingConfigInput = z.input<typeof fastTrainingConfigSchema>;

/**
 * FGSM with a random start: x_adv = Π(x + δ₀ + α·ε·sign(∇CE(x + δ₀))), δ₀ uniform in the ball of
 * radius noise·ε, Π the projection onto the ε-ball and bounds (`project`, default) or onto the
 * bounds alone.
 */
export function fgsmRandomStart(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: { eps: number; alpha: number; norm: 'linf' | 'l2'; noise?: number; project?: boolean },
  rng: Rng,
): tf.Tensor {
  const { noise = 1, project = true } = c;
  return tf.tidy(() => {
    const x0 = startingPoint(
      model,
      x,
      { eps: noise * c.eps, norm: c.norm, randomStart: noise > 0 },
      rng,
    );
    const objective = { goal: labels, targeted: false, loss: 'ce' as const };
    const constrain = project ? 'ball' : 'bounds';
    return ascentStep(model, x, x0, objective, { ...c, stepSize: c.alpha * c.eps, constrain });
  });
}

export function createFastTraining(
  config: FastTrainingConfigInput,
): RobustTraining & { config: FastTrainingConfig } {
  const c = parseWith('fastTraining', fastTrainingConfigSchema, config);
  const rng = new Rng(c.seed);
  const cost = new CostMeter();
  return {
    config: c,
    cost,
    prepare: (model, x, labels) => {
      cost.seen(x.shape[0]);
      cost.add(x.shape[0], 2);
      return fgsmRandomStart(trainingClassifier(model, c.bounds), x, labels, c, rng);
    },
    lossFn: (model, _x, labels, _progress, xAdv) => {
      if (xAdv == null)
        throw new ParryError('INTERNAL', 'fastTraining: the prepare hook did not run');
      return tf.tidy(() => {
        const logits = trainingLogits(model, xAdv);
        return { loss: crossEntropy(logits, labels), logits };
      });
    },
  };
}

/** Held-out accuracies of one epoch. */
export interface RobustCheck {
  /** Accuracy under the multi-step held-out attack (PGD or APGD-CE). */
  pgd: number;
  fgsm: number;
}

export interface OverfittingVerdict {
  collapsed: boolean;
  reason?: string;
}

/**
 * Catastrophic overfitting: PGD accuracy fell more than `drop` (default 0.2, absolute) below
 * `reference`'s, the best earlier healthy epoch, while FGSM accuracy stayed at least `fgsmHigh`
 * (default 0.5) — the signature Wong et al. describe (their Fig. 2): the model masks the
 * single-step gradient, PGD still finds the way. The 0.2 drop is the reference code's
 * early-stopping test; measuring from the best epoch also catches a collapse spread over epochs.
 */
export function detectCatastrophicOverfitting(
  reference: RobustCheck | undefined,
  current: RobustCheck,
  opts: { drop?: number; fgsmHigh?: number; attack?: string } = {},
): OverfittingVerdict {
  const { drop = 0.2, fgsmHigh = 0.5, attack = 'PGD' } = opts;
  if (reference == null) return { collapsed: false };
  const fell = reference.pgd - current.pgd > drop;
  if (!fell || current.fgsm < fgsmHigh) return { collapsed: false };
  return {
    collapsed: true,
    reason: `${attack} accuracy fell from ${reference.pgd.toFixed(3)} to ${current.pgd.toFixed(3)} while FGSM accuracy is ${current.fgsm.toFixed(3)}`,
  };
}
