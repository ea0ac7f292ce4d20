/**
 * The evasion attacks, as a plain list. Every entry has one strict schema — the shared threat
 * model (norm, eps, targeted, seed; src/objectives/threat-model.ts) plus the attack's own options,
 * taken from the attack's config schema — what it needs from the model, and one factory. The CLI's
 * options, the evaluate config's `params` and the config's JSON schema are generated from these
 * schemas, so an option an attack does not read is refused wherever it is given.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Dataset } from '../data/dataset.js';
import type { Classifier } from '../models/classifier.js';
import { type Norm, threatModelShape } from '../objectives/threat-model.js';
import { type Capability, parseEntryOptions, type RegistryEntry } from '../options.js';
import { apgdConfigSchema, createApgd } from './evasion/apgd.js';
import { autoConfigSchema, createAuto } from './evasion/auto.js';
import { decisionClassifierFrom, queryClassifierFrom } from './evasion/black-box.js';
import { carliniWagnerConfigSchema, createCarliniWagner } from './evasion/carlini-wagner.js';
import { createDeepFool, deepFoolConfigSchema } from './evasion/deepfool.js';
import { createFgsm, fgsmConfigSchema } from './evasion/fgsm.js';
import { createHopSkipJump, hopSkipJumpConfigSchema } from './evasion/hop-skip-jump.js';
import { createMim, mimConfigSchema } from './evasion/mim.js';
import { attackSuccess } from './evasion/objective.js';
import { createPgd, pgdConfigSchema } from './evasion/pgd.js';
import { enforceThreatModel, perturbationNorms } from './evasion/projection.js';
import { createSquare, squareConfigSchema } from './evasion/square.js';
import { applyUniversal, createUap, type UapResult, uapConfigSchema } from './evasion/uap.js';
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

/** What an attack's runner returns; `runAttack` completes it into an `AttackResult`. */
export type AttackRun = Pick<AttackResult, 'xAdv' | 'gradientEvaluations' | 'queries' | 'brokenBy'>;
type Runner = (
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  opts: AttackRunOptions & { universalPerturbation?: Float32Array },
) => Promise<AttackRun>;

export interface AttackEntry<S extends z.ZodObject = z.ZodObject> extends RegistryEntry<S> {
  norms: readonly Norm[];
  /** Minimum-norm attacks search for the smallest perturbation; eps is not their budget. */
  minimumNorm: boolean;
  /** The attack for validated options (`schema`'s output). */
  create(options: z.output<S>): Runner;
  /** Validates `params` against `schema`, runs the attack, and measures the result. */
  run(
    model: Classifier,
    x: tf.Tensor,
    labels: tf.Tensor1D,
    params: AttackParams,
    ctx: AttackContext,
  ): Promise<AttackResult>;
}

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
  create(options: Options): Runner;
}

/** An entry from its definition: the schema is the threat model for its norms plus `options`. */
export function defineAttack<S extends z.ZodObject>(def: AttackDefinition<S>): AttackEntry {
  const minimumNorm = def.minimumNorm ?? false;
  const threat = threatModelShape(def.norms, {
    targeted: def.targeted,
    eps: !minimumNorm,
  });
  const schema = threatSchema(threat, def.options);
  const entry: AttackEntry = {
    name: def.name,
    description: def.description,
    norms: def.norms,
    minimumNorm,
    requires: def.requires,
    schema,
    create: (options) => def.create(options as Options),
    run: (model, x, labels, params, ctx) => runAttack(entry, model, x, labels, params, ctx),
  };
  return entry;
}

function threatSchema(threat: ReturnType<typeof threatModelShape>, own: z.ZodRawShape) {
  // An attack's own norm/eps/targeted/seed fields give way to the shared threat model's.
  const { norm: _n, eps: _e, targeted: _t, seed: _s, ...rest } = own;
  return z.strictObject({ ...threat, ...rest });
}

/** `params` checked against `entry`'s schema, defaults filled in (uap's perturbation left out). */
export function attackOptions(entry: AttackEntry, params: AttackParams): Options {
  const { universalPerturbation: _, ...given } = params;
  return parseEntryOptions(entry, given) as Options;
}

/**
 * Crafts adversarial inputs with `entry`: validates `params` with the entry's schema (an option the
 * attack does not read is an error naming both) and runs the attack; measures nothing, so a caller
 * with its own measuring protocol (e.g. a randomised defense, where every forward pass is a random
 * draw) controls every pass over the model. Caller owns `xAdv`.
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
  const { universalPerturbation } = params;
  const { progress, ...rest } = ctx;
  const onProgress = progress && ((done: number, total: number) => progress(done / total));
  const run = { ...rest, onProgress, universalPerturbation };
  const out = await entry.create(options)(model, x, labels, run);
  return { ...out, options };
}

/**
 * Runs `entry` on a batch (as `craftAttack`) and measures what it did in one forward pass: the
 * prediction on `xAdv`, success against the goal, and the perturbation norms. Caller owns every
 * tensor of the result (`disposeAttackResult`).
 */
export async function runAttack(
  entry: AttackEntry,
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  params: AttackParams,
  ctx: AttackContext = {},
): Promise<AttackResult> {
  const { options, ...out } = await craftAttack(entry, model, x, labels, params, ctx);
  const goal = options.targeted ? ctx.targetLabels : labels;
  const [predictions, success, norms] = tf.tidy(() => {
    const logits = model.logits(out.xAdv);
    return [
      tf.cast(tf.argMax(logits, 1), 'int32') as tf.Tensor1D,
      attackSuccess(logits, goal ?? labels, options.targeted),
      perturbationNorms(out.xAdv, x, options.norm),
    ];
  });
  return {
    xAdv: out.xAdv,
    predictions,
    success,
    perturbationNorms: norms,
    gradientEvaluations: out.gradientEvaluations,
    queries: out.queries,
    seed: options.seed,
    ...(out.brokenBy ? { brokenBy: out.brokenBy } : {}),
  };
}

/** What each attack option means (the help text of the CLI flag and of the config's JSON schema). */
const OPTION_HELP: Record<string, string> = {
  steps: 'iterations',
  stepSize: 'step length in the chosen norm (default 2.5·eps/steps)',
  restarts: 'random restarts; each example keeps its worst case',
  randomStart: 'start from a random point in the ball',
  loss: 'objective: cross-entropy (ce) or the C&W logit margin',
  l1Fraction: 'L1 only: fraction of coordinates a sparse step moves',
  decay: 'momentum decay factor μ',
  maxQueries: 'query budget per example',
  pInit: 'initial fraction of the image a square covers',
  initEvals: 'gradient-estimate queries at the first iteration',
  maxEvals: 'gradient-estimate queries at most per iteration',
  gamma: 'binary-search threshold factor γ',
  initTrials: 'random draws to find a first adversarial point',
  numTargets: 'target classes tried (the most likely after the true one)',
  rho: 'step-size halving threshold ρ',
  alpha: 'momentum weight α',
  attacks: 'ensemble members, run in this order on the examples still standing',
  targetFoolingRate: 'stop fitting once this fraction of inputs is fooled',
  maxEpochs: 'passes over the fitting set',
  deepfoolSteps: 'DeepFool iterations per example while fitting',
  overshoot: 'factor the found perturbation is enlarged by',
  candidates: 'classes considered for the closest boundary',
  binarySearchSteps: 'binary-search rounds over the constant c',
  initialConst: 'first constant c of the binary search',
  confidence: 'logit margin κ the adversarial class must win by',
  lr: 'Adam learning rate',
  abortEarly: 'stop a round when the loss stops falling',
};

/** The fields `keys` of an attack's config schema, each with its help text. */
function pick<S extends z.ZodObject, K extends keyof S['shape'] & string>(
  schema: S,
  keys: readonly K[],
): Pick<S['shape'], K> {
  return Object.fromEntries(
    keys.map((k) => {
      const field = schema.shape[k] as z.ZodType;
      const help = OPTION_HELP[k];
      return [k, help && !field.description ? field.describe(help) : field];
    }),
  ) as Pick<S['shape'], K>;
}

const white = (xAdv: tf.Tensor, gradientEvaluations: number): AttackRun => ({
  xAdv,
  gradientEvaluations,
  queries: 0,
});

/** A white-box attack's runner as the registry's: its inputs and gradient count (tensors it measured itself freed). */
function whiteBox(
  attack: (
    model: Classifier,
    x: tf.Tensor,
    labels: tf.Tensor1D,
    run: AttackRunOptions,
  ) => Promise<{
    xAdv: tf.Tensor;
    gradientEvaluations: number;
    success?: tf.Tensor;
    perturbationNorms?: tf.Tensor;
  }>,
): Runner {
  return async (model, x, labels, run) => {
    const r = await attack(model, x, labels, run);
    tf.dispose([r.success, r.perturbationNorms].filter((t) => t !== undefined));
    return white(r.xAdv, r.gradientEvaluations);
  };
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
    create:
      ({ seed: _, ...o }) =>
      async (model, x, labels, run) =>
        white(createFgsm(o)(model, x, labels, run), 1),
  }),
  defineAttack({
    name: 'bim',
    description: 'basic iterative method (Kurakin et al. 2017): PGD without random start',
    norms: ['linf', 'l2', 'l1'],
    requires: ['gradients'],
    targeted: true,
    options: pick(pgdConfigSchema, PGD_OPTIONS),
    create: (o) => whiteBox(createPgd({ ...o, randomStart: false, restarts: 1 })),
  }),
  defineAttack({
    name: 'pgd',
    description: 'projected gradient descent (Madry et al. 2018), random start, restarts',
    norms: ['linf', 'l2', 'l1'],
    requires: ['gradients'],
    targeted: true,
    options: pick(pgdConfigSchema, [...PGD_OPTIONS, 'randomStart', 'restarts']),
    create: (o) => whiteBox(createPgd(o)),
  }),
  defineAttack({
    name: 'mim',
    description: 'momentum iterative method (Dong et al. 2018): BIM with L1-normalised momentum',
    norms: ['linf', 'l2'],
    requires: ['gradients'],
    targeted: true,
    options: pick(mimConfigSchema, ['stepSize', 'steps', 'decay', 'randomStart', 'loss']),
    create: (o) => whiteBox(createMim(o)),
  }),
  defineAttack({
    name: 'square',
    description: 'Square Attack (Andriushchenko et al. 2020): score-based black-box random search',
    norms: ['linf', 'l2'],
    requires: ['scores'],
    targeted: true,
    options: pick(squareConfigSchema, ['maxQueries', 'pInit']),
    create: (o) => async (model, x, labels, run) => {
      const r = await createSquare(o)(queryClassifierFrom(model), x, labels, run);
      return { xAdv: r.xAdv, gradientEvaluations: 0, queries: r.meanQueries };
    },
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
    create: (o) => async (model, x, labels, run) => {
      const r = await createHopSkipJump(o)(decisionClassifierFrom(model), x, labels, run);
      return { xAdv: r.xAdv, gradientEvaluations: 0, queries: r.meanQueries };
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
    create:
      ({ targeted: _, ...o }) =>
      async (model, x, labels, run) => {
        const r = await createAuto(o)(model, x, labels, run);
        return {
          xAdv: r.xAdv,
          gradientEvaluations: r.gradientEvaluations,
          queries: r.queries,
          brokenBy: r.brokenBy,
        };
      },
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
      async (model, x, _labels, run) => {
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
        return white(xAdv, gradientEvaluations);
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
    create: ({ targeted: _, seed: __, ...o }) => whiteBox(createDeepFool(o)),
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
    create: ({ norm: _, eps: __, seed: ___, ...o }) => whiteBox(createCarliniWagner(o)),
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
    create: (o) => whiteBox(createApgd({ ...o, loss, targeted })),
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
