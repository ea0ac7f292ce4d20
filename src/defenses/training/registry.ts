/**
 * The training methods `parry train --defense` runs, as a plain list in the registry shape every
 * family shares: a strict schema (the threat model where it applies + the method's own options,
 * named as the command line names them), what the method needs, and one factory. The schema also
 * holds the run options of robust training (held-out check, early stopping, eps schedule), so an
 * option a method does not read is refused naming both.
 */
import { z } from 'zod';
import { NORMS } from '../../objectives/threat-model.js';
import { type Capability, type RegistryEntry, requiredMessage } from '../../options.js';
import type { RobustTraining, SettingAt } from './adversarial.js';
import { createFastTraining } from './fast-at.js';
import { createInputGradientRegularizer } from './input-gradient.js';
import { createJacobianRegularizer } from './jacobian.js';
import { createMart } from './mart.js';
import { createPgdTraining } from './pgd-at.js';
import { createTrades } from './trades.js';

/** What a robust method is, built: its batch loss, its parsed config and its name for records. */
export interface BuiltMethod {
  training: RobustTraining;
  params: Record<string, unknown>;
  name: string;
}

export interface TrainingMethodEntry extends RegistryEntry {
  /** 'plain': cross-entropy only; 'robust': a batch loss run data-parallel; 'ibp': certified. */
  kind: 'plain' | 'robust' | 'ibp';
  /** robust: crafts adversarial examples, so an eps schedule applies. */
  adversarial?: boolean;
  /** robust: the method for validated options (`bounds` from the model; `at` the schedule). */
  build?(options: Record<string, unknown>, bounds: [number, number], at?: SettingAt): BuiltMethod;
  /** robust: the method again from its own parsed config (how pool workers rebuild it). */
  fromConfig?(config: never, at?: SettingAt): RobustTraining;
}

const seed = z.number().int().min(0).max(0xffffffff).default(0).describe('random seed');
const eps = z
  .number({ error: requiredMessage })
  .positive()
  .describe('training radius (regularisers: radius of the held-out check, default 0.1)');
const norm = z.enum(NORMS.filter((n) => n !== 'l1') as ['linf', 'l2']).default('linf');

/** The held-out robust-accuracy check, early stopping and eps schedule of robust training. */
const runShape = {
  valSplit: z.number().gt(0).lt(1).optional().describe('fraction of training data held out'),
  patience: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe('epochs without improvement before stopping'),
  evalAttack: z.enum(['pgd', 'apgd-ce']).default('pgd').describe('attack of the held-out check'),
  evalSteps: z.number().int().min(1).default(10).describe('steps of the held-out attack'),
};
const scheduleShape = {
  schedule: z.enum(['constant', 'linear', 'adaptive']).default('constant').describe('eps schedule'),
};
const innerAttack = {
  attackSteps: z.number().int().min(1).default(10).describe('inner PGD steps'),
  stepSize: z.number().positive().optional().describe('inner PGD step (default 2.5·eps/steps)'),
};

/** Cross-field rules of the run options. */
function runRules(o: Record<string, unknown>, ctx: z.RefinementCtx): void {
  if (o.schedule === 'adaptive' && o.valSplit === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['schedule'],
      message: 'adaptive needs valSplit (it adapts to held-out accuracy)',
    });
  }
  if (o.patience !== undefined && o.valSplit === undefined) {
    ctx.addIssue({ code: 'custom', path: ['patience'], message: 'needs valSplit' });
  }
}

function robust(
  name: string,
  description: string,
  own: z.ZodRawShape,
  build: TrainingMethodEntry['build'],
  fromConfig: TrainingMethodEntry['fromConfig'],
  opts: { adversarial: boolean; requires?: Capability[] },
): TrainingMethodEntry {
  const shape = { ...own, ...runShape, ...(opts.adversarial ? scheduleShape : {}) };
  return {
    name,
    description,
    kind: 'robust',
    adversarial: opts.adversarial,
    requires: opts.requires ?? ['gradients', 'training-data'],
    schema: z.strictObject(shape).superRefine(runRules) as unknown as z.ZodObject,
    build,
    fromConfig,
  };
}

const threat = (o: Record<string, unknown>, bounds: [number, number]) => ({
  eps: o.eps as number,
  norm: o.norm as 'linf' | 'l2',
  steps: o.attackSteps as number,
  stepSize: o.stepSize as number | undefined,
  bounds,
  seed: o.seed as number,
});

/** A penalty of λ on the loss; judged at eps (default 0.1) by the held-out check. */
function regulariser(
  name: string,
  description: string,
  own: z.ZodRawShape,
  create: (o: Record<string, unknown>) => RobustTraining & { config: Record<string, unknown> },
  fromConfig: TrainingMethodEntry['fromConfig'],
): TrainingMethodEntry {
  const lambda = z.number({ error: requiredMessage }).min(0).describe('weight of the penalty');
  return robust(
    name,
    description,
    { eps: eps.default(0.1), norm, seed, lambda, ...own },
    (o) => {
      const training = create(o);
      return { training, params: training.config, name: description };
    },
    fromConfig,
    { adversarial: false },
  );
}

/** TRADES and MART: an inner PGD attack and a β-weighted KL term. */
function betaMethod(
  name: string,
  paper: string,
  loss: string,
  create: typeof createTrades | typeof createMart,
): TrainingMethodEntry {
  const beta = z.number().min(0).default(6).describe('weight of the KL term');
  return robust(
    name,
    `${paper}: ${loss}`,
    { eps, norm, seed, ...innerAttack, beta },
    (o, bounds, at) => {
      const t = create({ ...threat(o, bounds), beta: o.beta as number }, at);
      return { training: t, params: t.config, name: paper };
    },
    (c, at) => create(c, at),
    { adversarial: true },
  );
}

export const TRAINING_METHODS: readonly TrainingMethodEntry[] = [
  {
    name: 'none',
    description: 'plain cross-entropy',
    kind: 'plain',
    requires: ['training-data'],
    schema: z.strictObject({ seed }),
  },
  {
    name: 'ibp',
    description: 'IBP certified training (Gowal et al. 2018), L∞; one thread',
    kind: 'ibp',
    requires: ['gradients', 'training-data'],
    schema: z
      .strictObject({
        eps,
        seed,
        ibpWarmup: z
          .number()
          .min(0)
          .max(1)
          .default(0.1)
          .describe('fraction of training with eps 0'),
        ibpRamp: z.number().min(0).max(1).default(0.5).describe('fraction over which eps ramps up'),
        certifyEps: z
          .number()
          .min(0)
          .optional()
          .describe('radius of the per-epoch IBP-certified accuracy (default eps)'),
      })
      .superRefine((o, ctx) => {
        if (o.ibpWarmup + o.ibpRamp > 1) {
          const message = `ibpWarmup + ibpRamp must be <= 1, got ${o.ibpWarmup} + ${o.ibpRamp}`;
          ctx.addIssue({ code: 'custom', path: ['ibpRamp'], message });
        }
      }) as unknown as z.ZodObject,
  },
  robust(
    'pgd-at',
    'PGD adversarial training (Madry et al. 2018)',
    {
      eps,
      norm,
      seed,
      ...innerAttack,
      mix: z.number().min(0).max(1).default(0).describe('fraction of the loss on clean examples'),
    },
    (o, bounds, at) => {
      const t = createPgdTraining({ ...threat(o, bounds), mix: o.mix as number }, at);
      return {
        training: t,
        params: t.config,
        name: 'PGD adversarial training (Madry et al. 2018)',
      };
    },
    (c, at) => createPgdTraining(c, at),
    { adversarial: true },
  ),
  robust(
    'fast-at',
    'fast adversarial training: FGSM from a random start (Wong et al. 2020; N-FGSM with --fast-noise 2 --fast-alpha 1 --no-fast-project)',
    {
      eps,
      norm,
      seed,
      fastAlpha: z
        .number()
        .positive()
        .optional()
        .describe('FGSM step as a multiple of eps (default 1.25; N-FGSM: 1)'),
      fastNoise: z
        .number()
        .min(0)
        .optional()
        .describe('random-start radius as a multiple of eps (default 1; N-FGSM: 2)'),
      fastProject: z
        .boolean()
        .optional()
        .describe('project the FGSM point back onto the ball (default; N-FGSM: no)'),
      stopOnOverfit: z
        .boolean()
        .optional()
        .describe('stop at catastrophic overfitting, keeping the best earlier epoch'),
    },
    (o, bounds) => {
      const t = createFastTraining({
        eps: o.eps as number,
        norm: o.norm as 'linf' | 'l2',
        bounds,
        seed: o.seed as number,
        alpha: o.fastAlpha as number | undefined,
        noise: o.fastNoise as number | undefined,
        project: o.fastProject as boolean | undefined,
      });
      const name = t.config.project
        ? 'fast adversarial training, FGSM with random start (Wong et al. 2020)'
        : 'fast adversarial training, N-FGSM: FGSM from a wide random start, unprojected (de Jorge et al. 2022)';
      return { training: t, params: t.config, name };
    },
    (c) => createFastTraining(c),
    { adversarial: false },
  ),
  betaMethod(
    'trades',
    'TRADES (Zhang et al. 2019)',
    'clean loss + β·KL to the KL-maximising PGD point',
    createTrades,
  ),
  betaMethod(
    'mart',
    'MART (Wang et al. 2020)',
    'boosted loss on misclassified examples + β·KL',
    createMart,
  ),
  regulariser(
    'grad-reg',
    'input-gradient regularisation, double backpropagation (Ross & Doshi-Velez 2018)',
    {},
    (o) => createInputGradientRegularizer({ lambda: o.lambda as number }),
    (c) => createInputGradientRegularizer(c),
  ),
  regulariser(
    'jacobian-reg',
    'Jacobian regularisation, random projections (Hoffman et al. 2019)',
    { projections: z.number().int().min(1).default(1).describe('random projections per example') },
    (o) =>
      createJacobianRegularizer({
        lambda: o.lambda as number,
        projections: o.projections as number,
        seed: o.seed as number,
      }),
    (c) => createJacobianRegularizer(c),
  ),
];
