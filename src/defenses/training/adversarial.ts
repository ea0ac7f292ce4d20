/**
 * What the adversarial-training methods share: a Classifier view of the model being trained,
 * the synchronous attacks that craft their training examples (PGD on cross-entropy, FGSM with a
 * random start, PGD on the KL divergence of TRADES / MART's start), and the common config.
 * Attacks run on the model in inference mode (dropout off, batch-norm moving statistics), as the
 * reference implementations do (`model.eval()` while crafting). Caller owns every result.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import {
  ascentStep,
  iterateSteps,
  type NamedObjective,
  type Objective,
  startingPoint,
} from '../../attacks/evasion/gradient-loop.js';
import { clipToBounds } from '../../attacks/evasion/projection.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { craftingEngine, engineLogits } from '../../models/index.js';
import { klDivergence } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import type { LossFn, PrepareFn, TrainProgress } from '../../train/loop.js';

/** The threat model and inner attack every adversarial-training method takes. */
export const threatSchema = z.object({
  /** Radius of the training ball. */
  eps: z.number().positive(),
  norm: z.enum(['linf', 'l2']).default('linf'),
  /** Inner attack steps K. */
  steps: z.number().int().min(1).default(10),
  /** Step length; defaults to 2.5·eps/steps (Madry et al.). */
  stepSize: z.number().positive().optional(),
  /** Valid input range. */
  bounds: z.tuple([z.number(), z.number()]).default([0, 1]),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
});
export type ThreatConfig = z.infer<typeof threatSchema>;

/** TRADES' and MART's config: the threat model and the weight β of their KL term. */
export const betaConfigSchema = threatSchema
  .extend({
    /** Weight β of the KL term (TRADES: robustness; MART: misclassification-aware). */
    beta: z.number().min(0).default(6),
  })
  .strict();
export type BetaConfig = z.infer<typeof betaConfigSchema>;
export type BetaConfigInput = z.input<typeof betaConfigSchema>;

/** The inner attack at one schedule point: the radius and steps may follow a schedule. */
export interface AttackSetting {
  eps: number;
  steps: number;
  stepSize: number;
}

export function defaultStepSize(eps: number, steps: number): number {
  return (2.5 * eps) / steps;
}

/**
 * A Classifier on a LayersModel in inference mode, for crafting attacks against it: on ONNX Runtime
 * with the model's current weights when the engine choice allows (`craftingEngine`), else tfjs.
 * Make one per training step: it reads the weights as they are now.
 */
export function trainingClassifier(model: tfl.LayersModel, bounds: [number, number]): Classifier {
  const out = model.outputs[0].shape;
  const engine = craftingEngine(model, bounds);
  return {
    inputShape: (model.inputs[0].shape as number[]).slice(1),
    numClasses: out[out.length - 1] as number,
    bounds,
    logits: engine
      ? (x) => engineLogits(engine, x)
      : (x) => model.apply(x, { training: false }) as tf.Tensor2D,
    engine,
  };
}

/** `s.steps` ascent steps on `objective` from `start` (owned); the shared step and loop of attacks. */
function iterate(
  model: Classifier,
  x: tf.Tensor,
  start: tf.Tensor,
  objective: Objective | NamedObjective,
  norm: 'linf' | 'l2',
  s: AttackSetting,
): tf.Tensor {
  const step = (xAdv: tf.Tensor) => ascentStep(model, x, xAdv, objective, { norm, ...s });
  return iterateSteps({ step, dispose: (t) => t.dispose() }, start, s.steps);
}

/** x + 0.001·N(0, 1), clipped: the start of the TRADES and MART reference code. */
function gaussianStart(model: Classifier, x: tf.Tensor, rng: Rng): tf.Tensor {
  return tf.tidy(() =>
    clipToBounds(
      tf.add(x, tf.randomNormal(x.shape, 0, 0.001, 'float32', rng.nextSeed())),
      model.bounds,
    ),
  );
}

/**
 * PGD on cross-entropy (Madry et al. 2018) from a uniform random start in the ball, or from x
 * plus 0.001·N(0, 1) (`start: 'gaussian'`, the start of MART's reference code).
 */
export function craftPgd(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  norm: 'linf' | 'l2',
  s: AttackSetting,
  rng: Rng,
  start: 'uniform' | 'gaussian' = 'uniform',
): tf.Tensor {
  const x0 =
    start === 'uniform'
      ? startingPoint(model, x, { ...s, norm, randomStart: true }, rng)
      : gaussianStart(model, x, rng);
  return iterate(model, x, x0, { goal: labels, targeted: false, loss: 'ce' }, norm, s);
}

/**
 * TRADES' inner maximisation (Zhang et al. 2019, Alg. 1; reference `trades_loss`): start at
 * x + 0.001·N(0, 1), ascend KL(p(x) ‖ p(x')) with p(x) held fixed.
 */
export function craftKl(
  model: Classifier,
  x: tf.Tensor,
  norm: 'linf' | 'l2',
  s: AttackSetting,
  rng: Rng,
): tf.Tensor {
  const clean = tf.tidy(() => model.logits(x));
  const x0 = gaussianStart(model, x, rng);
  const xAdv = iterate(model, x, x0, (logits) => klDivergence(clean, logits), norm, s);
  clean.dispose();
  return xAdv;
}

/**
 * Counts gradient evaluations per training example: the attack's steps plus the training
 * backward pass(es), summed over every batch a method has seen.
 */
export class CostMeter {
  private gradients = 0;
  private examples = 0;

  /** `perExample` gradient evaluations for each of `batch` examples. */
  add(batch: number, perExample: number): void {
    this.gradients += batch * perExample;
  }

  /** One training batch of `batch` examples seen. */
  seen(batch: number): void {
    this.examples += batch;
  }

  /** Mean gradient evaluations per training example (per epoch and example), 0 before any. */
  perExample(): number {
    return this.examples === 0 ? 0 : this.gradients / this.examples;
  }
}

/** What every robust-training method hands `trainModel` and the CLI. */
export interface RobustTraining {
  /** Crafts the batch's adversarial examples outside the gradient tape, if the method has any. */
  prepare?: PrepareFn;
  lossFn: LossFn;
  cost: CostMeter;
}

/** Schedules give the inner attack's setting at a point of training; default: constant. */
export type SettingAt = (progress: TrainProgress) => AttackSetting;

export function constantSetting(c: ThreatConfig): SettingAt {
  const s = { eps: c.eps, steps: c.steps, stepSize: c.stepSize ?? defaultStepSize(c.eps, c.steps) };
  return () => s;
}

/** A per-example loss `[batch]` of clean and adversarial logits, with the weight β. */
export type BetaLoss = (
  logits: tf.Tensor2D,
  logitsAdv: tf.Tensor2D,
  labels: tf.Tensor1D,
  beta: number,
) => tf.Tensor1D;

/** Crafts a batch's adversarial examples (synchronously, outside the gradient tape). */
export type Craft = (
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  s: AttackSetting,
  rng: Rng,
) => tf.Tensor;

/**
 * An adversarial-training method from its parts: `craft` makes the batch's adversarial examples
 * outside the gradient tape (K attack gradients; `extraGradients` more per example for the weight
 * gradient), and `loss` is the per-example loss given them. One seeded generator per method draws
 * every batch's random start, so a run is reproducible from `config.seed`.
 */
export function adversarialMethod<C extends ThreatConfig>(
  name: string,
  c: C,
  settingAt: SettingAt | undefined,
  extraGradients: number,
  craft: Craft,
  loss: (
    model: tfl.LayersModel,
    x: tf.Tensor,
    xAdv: tf.Tensor,
    labels: tf.Tensor1D,
  ) => { loss: tf.Tensor1D; logits: tf.Tensor2D },
): RobustTraining & { config: C } {
  const at = settingAt ?? constantSetting(c);
  const rng = new Rng(c.seed);
  const cost = new CostMeter();
  return {
    config: c,
    cost,
    prepare: (model, x, labels, progress) => {
      const s = at(progress);
      cost.seen(x.shape[0]);
      cost.add(x.shape[0], s.steps + extraGradients);
      return craft(trainingClassifier(model, c.bounds), x, labels, s, rng);
    },
    lossFn: (model, x, labels, _progress, xAdv) => {
      if (xAdv == null) throw new ParryError('INTERNAL', `${name}: the prepare hook did not run`);
      return tf.tidy(() => loss(model, x, xAdv, labels));
    },
  };
}

/** The model's logits in training mode (dropout on, batch-norm batch statistics). */
export function trainingLogits(model: tfl.LayersModel, x: tf.Tensor): tf.Tensor2D {
  return model.apply(x, { training: true }) as tf.Tensor2D;
}

/**
 * TRADES and MART: `craft` makes x_adv, and `loss(logits, logitsAdv, labels, β)` compares both
 * branches (K attack gradients, then the weight gradient's backward pass through both). The
 * logits reported for training accuracy are the clean or the adversarial ones.
 */
export function betaMethod(
  name: string,
  config: BetaConfigInput,
  settingAt: SettingAt | undefined,
  craft: (c: BetaConfig) => Craft,
  loss: (
    logits: tf.Tensor2D,
    logitsAdv: tf.Tensor2D,
    labels: tf.Tensor1D,
    beta: number,
  ) => tf.Tensor1D,
  reported: 'clean' | 'adversarial',
): RobustTraining & { config: BetaConfig } {
  const c = parseWith(name, betaConfigSchema, config);
  return adversarialMethod(name, c, settingAt, 2, craft(c), (model, x, xAdv, labels) => {
    const logits = trainingLogits(model, x);
    const logitsAdv = trainingLogits(model, xAdv);
    return {
      loss: loss(logits, logitsAdv, labels, c.beta),
      logits: reported === 'clean' ? logits : logitsAdv,
    };
  });
}
