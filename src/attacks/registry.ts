/**
 * The attacks `parry attack` can run, as an explicit list (it also gives the CLI its help text).
 * Every entry adapts one attack to a common call: the parameters a user gives on the command
 * line in, an adversarial batch plus its cost out. Each attack validates its own config.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { createApgd } from './evasion/apgd.js';
import { createAuto } from './evasion/auto.js';
import { decisionClassifierFrom, queryClassifierFrom } from './evasion/black-box.js';
import { createCarliniWagner } from './evasion/carlini-wagner.js';
import { createDeepFool } from './evasion/deepfool.js';
import { createFgsm } from './evasion/fgsm.js';
import { createHopSkipJump } from './evasion/hop-skip-jump.js';
import { createMim } from './evasion/mim.js';
import { createPgd } from './evasion/pgd.js';
import { enforceThreatModel, type Norm } from './evasion/projection.js';
import { createSquare } from './evasion/square.js';
import { applyUniversal, createUap } from './evasion/uap.js';

/** What the command line can say about any attack; each attack reads the fields it uses. */
export interface AttackParams {
  norm: Norm;
  eps: number;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  randomStart?: boolean;
  targeted: boolean;
  /** Objective of gradient attacks: cross-entropy or the C&W margin (no softmax saturation). */
  loss?: 'ce' | 'margin';
  confidence?: number;
  maxQueries?: number;
  /** uap: a perturbation fitted beforehand (`inputShape`); without it uap fits one on the batch. */
  universalPerturbation?: Float32Array;
  seed: number;
}

export interface AttackContext {
  /** Target classes `[batch]`, when targeted. */
  targetLabels?: tf.Tensor1D;
  signal?: AbortSignal;
  /** Hears how much of the batch's attack is done, in [0, 1] (iterations or queries spent). */
  progress?: (fraction: number) => void;
}

/** The context as an attack's own options: its (done, total) progress becomes a fraction. */
function optionsOf(ctx: AttackContext) {
  const { progress, ...rest } = ctx;
  if (progress === undefined) return rest;
  return { ...rest, onProgress: (done: number, total: number) => progress(done / total) };
}

export interface AttackOutcome {
  /** Adversarial batch; the caller owns it. */
  xAdv: tf.Tensor;
  /** Forward+backward passes over the batch. */
  gradientEvaluations: number;
  /** Forward-only queries per example (black-box attacks). */
  queries: number;
  /** Ensembles: per example, the member that broke it ('clean', or null when it stayed robust). */
  brokenBy?: (string | null)[];
}

export interface AttackEntry {
  name: string;
  description: string;
  norms: readonly Norm[];
  /** Minimum-norm attacks search for the smallest perturbation; eps is not their budget. */
  minimumNorm: boolean;
  run(
    model: Classifier,
    x: tf.Tensor,
    labels: tf.Tensor1D,
    params: AttackParams,
    ctx: AttackContext,
  ): Promise<AttackOutcome>;
}

export const ATTACKS: readonly AttackEntry[] = [
  {
    name: 'fgsm',
    description: 'fast gradient sign method (linf) / fast gradient method (l2), one step',
    norms: ['linf', 'l2'],
    minimumNorm: false,
    run: async (model, x, labels, p, ctx) => ({
      xAdv: createFgsm({ eps: p.eps, norm: p.norm, targeted: p.targeted, loss: p.loss })(
        model,
        x,
        labels,
        ctx,
      ),
      gradientEvaluations: 1,
      queries: 0,
    }),
  },
  {
    name: 'bim',
    description: 'basic iterative method (Kurakin et al. 2017): PGD without random start',
    norms: ['linf', 'l2', 'l1'],
    minimumNorm: false,
    run: (model, x, labels, p, ctx) =>
      runPgd(model, x, labels, { ...p, randomStart: false, restarts: 1 }, ctx),
  },
  {
    name: 'pgd',
    description: 'projected gradient descent (Madry et al. 2018), random start, restarts',
    norms: ['linf', 'l2', 'l1'],
    minimumNorm: false,
    run: runPgd,
  },
  {
    name: 'mim',
    description: 'momentum iterative method (Dong et al. 2018): BIM with L1-normalised momentum',
    norms: ['linf', 'l2'],
    minimumNorm: false,
    run: async (model, x, labels, p, ctx) => {
      const attack = createMim({
        eps: p.eps,
        norm: p.norm,
        steps: p.steps,
        stepSize: p.stepSize,
        randomStart: p.randomStart,
        targeted: p.targeted,
        loss: p.loss,
        seed: p.seed,
      });
      const r = await attack(model, x, labels, optionsOf(ctx));
      return { xAdv: r.xAdv, gradientEvaluations: r.gradientEvaluations, queries: 0 };
    },
  },
  {
    name: 'square',
    description: 'Square Attack (Andriushchenko et al. 2020): score-based black-box random search',
    norms: ['linf', 'l2'],
    minimumNorm: false,
    run: async (model, x, labels, p, ctx) => {
      const attack = createSquare({
        eps: p.eps,
        norm: p.norm,
        maxQueries: p.maxQueries,
        targeted: p.targeted,
        seed: p.seed,
      });
      const r = await attack(queryClassifierFrom(model), x, labels, optionsOf(ctx));
      return { xAdv: r.xAdv, gradientEvaluations: 0, queries: r.meanQueries };
    },
  },
  {
    name: 'hsj',
    description:
      'HopSkipJump (Chen et al. 2020): decision-based black box (top-1 labels only), minimum-norm',
    norms: ['l2', 'linf'],
    minimumNorm: true,
    run: async (model, x, labels, p, ctx) => {
      const attack = createHopSkipJump({
        norm: p.norm,
        maxQueries: p.maxQueries,
        steps: p.steps,
        targeted: p.targeted,
        seed: p.seed,
      });
      const r = await attack(decisionClassifierFrom(model), x, labels, optionsOf(ctx));
      return { xAdv: r.xAdv, gradientEvaluations: 0, queries: r.meanQueries };
    },
  },
  apgdEntry(
    'apgd-ce',
    'APGD with cross-entropy (Croce & Hein 2020), step-size schedule',
    'ce',
    false,
  ),
  apgdEntry(
    'apgd-dlr',
    'APGD with the difference-of-logits-ratio loss (scale invariant)',
    'dlr',
    false,
  ),
  apgdEntry(
    'apgd-t',
    'targeted APGD-DLR over the top classes other than the true one',
    'dlr',
    true,
  ),
  {
    name: 'auto',
    description:
      'AutoAttack-style ensemble: APGD-CE, APGD-T, then Square on what is left; per-example worst case',
    norms: ['linf', 'l2'],
    minimumNorm: false,
    run: async (model, x, labels, p, ctx) => {
      if (p.targeted) {
        throw new ParryError(
          'BAD_OPTION',
          'auto: --targeted is not supported (untargeted worst case)',
        );
      }
      const attack = createAuto({
        eps: p.eps,
        norm: p.norm,
        steps: p.steps,
        maxQueries: p.maxQueries,
        seed: p.seed,
      });
      const r = await attack(model, x, labels, optionsOf(ctx));
      return {
        xAdv: r.xAdv,
        gradientEvaluations: r.gradientEvaluations,
        queries: r.queries,
        brokenBy: r.brokenBy,
      };
    },
  },
  {
    name: 'uap',
    description:
      'universal adversarial perturbation (Moosavi-Dezfooli et al. 2017): one perturbation for all inputs',
    norms: ['linf', 'l2'],
    minimumNorm: false,
    run: async (model, x, _labels, p, ctx) => {
      if (p.targeted) throw new ParryError('BAD_OPTION', 'uap: --targeted is not supported');
      let v = p.universalPerturbation;
      let gradientEvaluations = 0;
      if (v === undefined) {
        const fitUap = createUap({
          eps: p.eps,
          norm: p.norm,
          deepfoolSteps: p.steps,
          seed: p.seed,
        });
        const r = await fitUap(model, x, { signal: ctx.signal });
        v = r.perturbation;
        gradientEvaluations = r.gradientEvaluations / x.shape[0];
      }
      const pert = v;
      const xAdv = tf.tidy(() =>
        enforceThreatModel(
          applyUniversal(x, tf.tensor(pert, model.inputShape), model.bounds),
          x,
          p.eps,
          p.norm,
          model.bounds,
        ),
      );
      return { xAdv, gradientEvaluations, queries: 0 };
    },
  },
  {
    name: 'deepfool',
    description:
      'DeepFool (Moosavi-Dezfooli et al. 2016): minimal linearised steps to the boundary',
    norms: ['l2', 'linf'],
    minimumNorm: true,
    run: async (model, x, labels, p, ctx) => {
      const norm = p.norm as 'l2' | 'linf';
      const r = await createDeepFool({ norm, steps: p.steps })(model, x, labels, optionsOf(ctx));
      tf.dispose([r.success, r.perturbationNorms]);
      return { xAdv: r.xAdv, gradientEvaluations: r.gradientEvaluations, queries: 0 };
    },
  },
  {
    name: 'cw',
    description: 'Carlini-Wagner L2 (2017): Adam in tanh space, binary search over c, confidence',
    norms: ['l2'],
    minimumNorm: true,
    run: async (model, x, labels, p, ctx) => {
      const attack = createCarliniWagner({
        steps: p.steps,
        confidence: p.confidence,
        targeted: p.targeted,
      });
      const r = await attack(model, x, labels, optionsOf(ctx));
      tf.dispose([r.success, r.perturbationNorms]);
      return { xAdv: r.xAdv, gradientEvaluations: r.gradientEvaluations, queries: 0 };
    },
  },
];

/** APGD variants; APGD-T picks its own targets, so its success is any misclassification. */
function apgdEntry(
  name: string,
  description: string,
  loss: 'ce' | 'dlr',
  targeted: boolean,
): AttackEntry {
  return {
    name,
    description,
    norms: ['linf', 'l2'],
    minimumNorm: false,
    run: async (model, x, labels, p, ctx) => {
      if (p.targeted) {
        throw new ParryError(
          'BAD_OPTION',
          `${name}: --targeted is not supported (apgd-t chooses its own target classes)`,
        );
      }
      const attack = createApgd({
        eps: p.eps,
        norm: p.norm,
        steps: p.steps,
        restarts: p.restarts,
        loss,
        targeted,
        seed: p.seed,
      });
      const r = await attack(model, x, labels, optionsOf(ctx));
      return { xAdv: r.xAdv, gradientEvaluations: r.gradientEvaluations, queries: 0 };
    },
  };
}

async function runPgd(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  p: AttackParams,
  ctx: AttackContext,
): Promise<AttackOutcome> {
  const attack = createPgd({
    eps: p.eps,
    norm: p.norm,
    steps: p.steps,
    stepSize: p.stepSize,
    restarts: p.restarts,
    randomStart: p.randomStart,
    targeted: p.targeted,
    loss: p.loss,
    seed: p.seed,
  });
  const r = await attack(model, x, labels, optionsOf(ctx));
  return { xAdv: r.xAdv, gradientEvaluations: r.gradientEvaluations, queries: 0 };
}

export function attackNames(): string[] {
  return ATTACKS.map((a) => a.name);
}

export function findAttack(name: string): AttackEntry | undefined {
  return ATTACKS.find((a) => a.name === name);
}
