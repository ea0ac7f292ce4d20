/**
 * The evasion attacks, as a plain list. Every entry has one strict schema — the shared threat
 * model (norm, eps, targeted, seed; src/objectives/threat-model.ts) plus the attack's own options,
 * taken from the attack's config schema — what it needs from the model, and one factory whose
 * runner returns an `AttackResult` (src/attacks/result.ts). The CLI's options, the evaluate
 * config's `params` and the config's JSON schema are generated from these schemas, so an option an
 * attack does not read is refused wherever it is given.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Dataset } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { type Norm, threatModelShape } from '../objectives/threat-model.js';
import { type Capability, parseEntryOptions, type TechniqueEntry } from '../options.js';
import { apgdConfigSchema, createApgd } from './evasion/apgd.js';
import { autoConfigSchema, createAuto } from './evasion/auto.js';
import { decisionClassifierFrom, queryClassifierFrom } from './evasion/black-box.js';
import { carliniWagnerConfigSchema, createCarliniWagner } from './evasion/carlini-wagner.js';
import { createDeepFool, deepFoolConfigSchema } from './evasion/deepfool.js';
import { createFgsm, fgsmConfigSchema } from './evasion/fgsm.js';
import { finishAttack } from './evasion/gradient-loop.js';
import { createHopSkipJump, hopSkipJumpConfigSchema } from './evasion/hop-skip-jump.js';
import { createMim, mimConfigSchema } from './evasion/mim.js';
import { createPgd, pgdConfigSchema } from './evasion/pgd.js';
import { enforceThreatModel } from './evasion/projection.js';
import { createSquare, squareConfigSchema } from './evasion/square.js';
import { applyUniversal, createUap, type UapResult, uapConfigSchema } from './evasion/uap.js';
import { pick } from './option-help.js';
import type { AttackResult, AttackRunOptions } from './result.js';

/** The options of any attack, as a caller holds them before the entry's schema checks them. */
export interface AttackParams {
  norm: Norm;
  eps?: number;
  targeted?: boolean;
  seed: number;
  /**
   * uap: a perturbation fitted beforehand (`inputShape`) — data, not an option: it travels with
   * the options to pool workers and is taken out before the schema checks them.
   */
  universalPerturbation?: Float32Array;
  [option: string]: unknown;
}

export interface AttackContext {
  /** Target classes `[batch]`, when targeted. */
  targetLabels?: tf.Tensor1D;
  signal?: AbortSignal;
  /** Hears how much of the batch's attack is done, in [0, 1] (iterations or queries spent). */
  progress?: (fraction: number) => void;
}

/** What `craftAttack` hands back: the adversarial batch and its cost, nothing measured. */
export type AttackRun = Pick<AttackResult, 'xAdv' | 'gradientEvaluations' | 'queries' | 'brokenBy'>;

/** What a caller may pass to a registry runner: the run options, and uap's fitted perturbation. */
export type AttackRunnerOptions = AttackRunOptions & { universalPerturbation?: Float32Array };

/** Every attack, once its options are parsed: a batch in, an `AttackResult` out (caller owns it). */
export type AttackRunner = (
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  opts: AttackRunnerOptions,
) => Promise<AttackResult>;

export interface AttackEntry<S extends z.ZodObject = z.ZodObject>
  extends TechniqueEntry<S, AttackRunner> {
  norms: readonly Norm[];
  /** Minimum-norm attacks search for the smallest perturbation; eps is not their budget. */
  minimumNorm: boolean;
  /** Validates `params` against `schema` and runs the attack (`runAttack`). */
  run(
    model: Classifier,
    x: tf.Tensor,
    labels: tf.Tensor1D,
    params: AttackParams,
    ctx: AttackContext,
  ): Promise<AttackResult>;
}

/** Parsed options: the threat model's fields, and the attack's own. */
export type Options = Record<string, unknown> & {
  norm: Norm;
  eps?: number;
  targeted: boolean;
  seed: number;
};

export interface AttackDefinition<S extends z.ZodObject> {
  name: string;
  description: string;
  norms: readonly [Norm, ...Norm[]];
  minimumNorm?: boolean;
  requires: readonly Capability[];
  /** Whether the attack can aim at given classes. */
  targeted: boolean;
  /** The attack's own options: fields of its config schema. */
  options: S['shape'];
  create(options: Options): AttackRunner;
}

/**
 * An entry from its definition: the schema is the threat model for its norms plus `options`; the
 * result records the seed the options gave (deterministic attacks draw nothing from it).
 */
export function defineAttack<S extends z.ZodObject>(def: AttackDefinition<S>): AttackEntry {
  const minimumNorm = def.minimumNorm ?? false;
  const threat = threatModelShape(def.norms, { targeted: def.targeted, eps: !minimumNorm });
  // An attack's own norm/eps/targeted/seed fields give way to the shared threat model's.
  const { norm: _n, eps: _e, targeted: _t, seed: _s, ...own } = def.options as z.ZodRawShape;
  const entry: AttackEntry = {
    name: def.name,
    description: def.description,
    norms: def.norms,
    minimumNorm,
    requires: def.requires,
    schema: z.strictObject({ ...threat, ...own }),
    create: (options) => {
      const o = options as Options;
      const runner = def.create(o);
      return async (model, x, labels, run) => ({
        ...(await runner(model, x, labels, run)),
        seed: o.seed,
      });
    },
    run: (model, x, labels, params, ctx) => runAttack(entry, model, x, labels, params, ctx),
  };
  return entry;
}

/** `params` checked against `entry`'s schema, defaults filled in (uap's perturbation left out). */
export function attackOptions(entry: AttackEntry, params: AttackParams): Options {
  const { universalPerturbation: _, ...given } = params;
  return parseEntryOptions(entry, given) as Options;
}

function runnerOptions(params: AttackParams, ctx: AttackContext): AttackRunnerOptions {
  const { progress, ...rest } = ctx;
  const onProgress = progress && ((done: number, total: number) => progress(done / total));
  return { ...rest, onProgress, universalPerturbation: params.universalPerturbation };
}

/**
 * Runs `entry` on a batch: validates `params` with the entry's schema (an option the attack does
 * not read is an error naming both) and returns the attack's result. Caller owns every tensor of
 * it (`disposeAttackResult`).
 */
export async function runAttack(
  entry: AttackEntry,
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  params: AttackParams,
  ctx: AttackContext = {},
): Promise<AttackResult> {
  const options = attackOptions(entry, params);
  return entry.create(options)(model, x, labels, runnerOptions(params, ctx));
}

/**
 * `runAttack` for a caller with its own measuring protocol (e.g. a randomised defense, where every
 * forward pass is a random draw): the adversarial batch and its cost, with the parsed options.
 * Caller owns `xAdv`.
 */
export async function craftAttack(
  entry: AttackEntry,
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  params: AttackParams,
  ctx: AttackContext = {},
): Promise<AttackRun & { options: Options }> {
  const options = attackOptions(entry, params);
  const r = await entry.create(options)(model, x, labels, runnerOptions(params, ctx));
  tf.dispose([r.predictions, r.success, r.perturbationNorms]);
  const { xAdv, gradientEvaluations, queries, brokenBy } = r;
  return { xAdv, gradientEvaluations, queries, ...(brokenBy ? { brokenBy } : {}), options };
}

/**
 * A runner's result for `xAdv` (taken over), measured on `model` in one forward pass: its
 * predictions, success against the goal (the targets when targeted) and perturbation norms.
 */
export function measureAttack(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  labels: tf.Tensor1D,
  o: Options,
  run: AttackRunOptions,
  cost: { gradientEvaluations: number; queries: number },
): AttackResult {
  const goal = o.targeted && run.targetLabels ? run.targetLabels : labels;
  const r = finishAttack(model, x, xAdv, goal, { norm: o.norm, targeted: o.targeted });
  return { ...r, ...cost, seed: o.seed };
}

const PGD_OPTIONS = ['stepSize', 'steps', 'loss', 'l1Fraction'] as const;

export const ATTACKS: readonly AttackEntry[] = [
  defineAttack({
    name: 'fgsm',
    description: 'fast gradient sign method (linf) / fast gradient method (l2), one step',
    norms: ['linf', 'l2'],
    requires: ['gradients'],
    targeted: true,
    options: pick(fgsmConfigSchema, ['loss']),
    create: ({ seed: _, ...o }) => createFgsm(o),
  }),
  defineAttack({
    name: 'bim',
    description: 'basic iterative method (Kurakin et al. 2017): PGD without random start',
    norms: ['linf', 'l2', 'l1'],
    requires: ['gradients'],
    targeted: true,
    options: pick(pgdConfigSchema, PGD_OPTIONS),
    create: (o) => createPgd({ ...o, randomStart: false, restarts: 1 }),
  }),
  defineAttack({
    name: 'pgd',
    description: 'projected gradient descent (Madry et al. 2018), random start, restarts',
    norms: ['linf', 'l2', 'l1'],
    requires: ['gradients'],
    targeted: true,
    options: pick(pgdConfigSchema, [...PGD_OPTIONS, 'randomStart', 'restarts']),
    create: (o) => createPgd(o),
  }),
  defineAttack({
    name: 'mim',
    description: 'momentum iterative method (Dong et al. 2018): BIM with L1-normalised momentum',
    norms: ['linf', 'l2'],
    requires: ['gradients'],
    targeted: true,
    options: pick(mimConfigSchema, ['stepSize', 'steps', 'decay', 'randomStart', 'loss']),
    create: (o) => createMim(o),
  }),
  defineAttack({
    name: 'square',
    description: 'Square Attack (Andriushchenko et al. 2020): score-based black-box random search',
    norms: ['linf', 'l2'],
    requires: ['scores'],
    targeted: true,
    options: pick(squareConfigSchema, ['maxQueries', 'pInit']),
    create: (o) => (model, x, labels, run) =>
      createSquare(o)(queryClassifierFrom(model), x, labels, run),
  }),
  defineAttack({
    name: 'hsj',
    description:
      'HopSkipJump (Chen et al. 2020): decision-based black box (top-1 labels only), minimum-norm',
    norms: ['l2', 'linf'],
    minimumNorm: true,
    requires: ['labels'],
    targeted: true,
    options: pick(hopSkipJumpConfigSchema, [
      'maxQueries',
      'steps',
      'initEvals',
      'maxEvals',
      'gamma',
      'initTrials',
    ]),
    // Labels only: the result is measured on the model afterwards, outside the query budget.
    create: (o) => async (model, x, labels, run) => {
      const r = await createHopSkipJump(o)(decisionClassifierFrom(model), x, labels, run);
      const cost = { gradientEvaluations: 0, queries: r.meanQueries };
      return measureAttack(model, x, r.xAdv, labels, o, run, cost);
    },
  }),
  apgd('apgd-ce', 'APGD with cross-entropy (Croce & Hein 2020), step-size schedule', 'ce', false),
  apgd('apgd-dlr', 'APGD with the difference-of-logits-ratio loss (scale invariant)', 'dlr', false),
  apgd('apgd-t', 'targeted APGD-DLR over the top classes other than the true one', 'dlr', true),
  defineAttack({
    name: 'auto',
    description:
      'AutoAttack-style ensemble: APGD-CE, APGD-T, then Square on what is left; per-example worst case',
    norms: ['linf', 'l2'],
    requires: ['gradients', 'scores'],
    targeted: false,
    options: pick(autoConfigSchema, ['attacks', 'steps', 'numTargets', 'maxQueries']),
    create: ({ targeted: _, ...o }) => createAuto(o),
  }),
  defineAttack({
    name: 'uap',
    description:
      'universal adversarial perturbation (Moosavi-Dezfooli et al. 2017): one perturbation for all inputs',
    norms: ['linf', 'l2'],
    requires: ['gradients', 'training-data'],
    targeted: false,
    options: pick(uapConfigSchema, [
      'targetFoolingRate',
      'maxEpochs',
      'deepfoolSteps',
      'overshoot',
    ]),
    create:
      ({ targeted: _, ...o }) =>
      async (model, x, labels, run) => {
        let v = run.universalPerturbation;
        let gradientEvaluations = 0;
        if (v === undefined) {
          const r = await createUap(o)(model, x, { signal: run.signal });
          v = r.perturbation;
          gradientEvaluations = r.gradientEvaluations / x.shape[0];
        }
        const pert = v;
        const eps = o.eps as number;
        const xAdv = tf.tidy(() =>
          enforceThreatModel(
            applyUniversal(x, tf.tensor(pert, model.inputShape), model.bounds),
            x,
            eps,
            o.norm,
            model.bounds,
          ),
        );
        return measureAttack(model, x, xAdv, labels, { ...o, targeted: false }, run, {
          gradientEvaluations,
          queries: 0,
        });
      },
  }),
  defineAttack({
    name: 'deepfool',
    description:
      'DeepFool (Moosavi-Dezfooli et al. 2016): minimal linearised steps to the boundary',
    norms: ['l2', 'linf'],
    minimumNorm: true,
    requires: ['gradients'],
    targeted: false,
    options: pick(deepFoolConfigSchema, ['steps', 'candidates', 'overshoot']),
    create: ({ targeted: _, seed: __, ...o }) => createDeepFool(o),
  }),
  defineAttack({
    name: 'cw',
    description: 'Carlini-Wagner L2 (2017): Adam in tanh space, binary search over c, confidence',
    norms: ['l2'],
    minimumNorm: true,
    requires: ['gradients'],
    targeted: true,
    options: pick(carliniWagnerConfigSchema, [
      'steps',
      'binarySearchSteps',
      'initialConst',
      'confidence',
      'lr',
      'abortEarly',
    ]),
    create: ({ norm: _, eps: __, seed: ___, ...o }) => createCarliniWagner(o),
  }),
];

/** APGD variants; APGD-T picks its own targets, so its success is any misclassification. */
function apgd(name: string, description: string, loss: 'ce' | 'dlr', targeted: boolean) {
  return defineAttack({
    name,
    description,
    norms: ['linf', 'l2'],
    requires: ['gradients'],
    targeted: false,
    options: pick(
      apgdConfigSchema,
      targeted
        ? ['steps', 'restarts', 'numTargets', 'rho', 'alpha']
        : ['steps', 'restarts', 'rho', 'alpha'],
    ),
    create: (o) => createApgd({ ...o, loss, targeted }),
  });
}

/**
 * uap: fits one perturbation on `data` (e.g. the first training images) with the options of the
 * `uap` entry; pass `perturbation` as `params.universalPerturbation` to apply it to other inputs.
 */
export async function fitUniversalPerturbation(
  model: Classifier,
  data: Dataset,
  params: AttackParams,
  onProgress?: (epoch: number, done: number) => void,
): Promise<UapResult & { summary: Record<string, number> }> {
  const started = performance.now();
  const {
    targeted: _,
    universalPerturbation: __,
    ...o
  } = parseEntryOptions(findAttack('uap')!, params) as Options;
  const x = tf.tensor(data.x, data.shape);
  try {
    const r = await createUap(o)(model, x, { onProgress });
    const seconds = (performance.now() - started) / 1000;
    const summary = {
      fit_examples: data.shape[0],
      fit_fooling_rate: r.foolingRates[r.foolingRates.length - 1] ?? 0,
      fit_epochs: r.epochs,
      fit_gradient_evaluations: r.gradientEvaluations,
      fit_seconds: Math.round(seconds * 1000) / 1000,
    };
    return { ...r, summary };
  } finally {
    x.dispose();
  }
}

export function attackNames(): string[] {
  return ATTACKS.map((a) => a.name);
}

export function findAttack(name: string): AttackEntry | undefined {
  return ATTACKS.find((a) => a.name === name);
}
