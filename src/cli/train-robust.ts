/**
 * The robust-training defences of `parry train` (everything but none and ibp): option checks,
 * the method's loss, and per-epoch bookkeeping — clean / PGD accuracy on a held-out set, the eps
 * schedule, fast-at's catastrophic-overfitting guard and early stopping on held-out robust
 * accuracy (the best epoch's weights restored at the end).
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Dataset } from '../data/index.js';
import {
  BestCheckpoint,
  checkTwiceDifferentiable,
  createFastTraining,
  createInputGradientRegularizer,
  createJacobianRegularizer,
  createMart,
  createPgdTraining,
  createSchedule,
  createTrades,
  detectCatastrophicOverfitting,
  type EpsSchedule,
  type RobustCheck,
  type RobustTraining,
} from '../defenses/index.js';
import { parallelTraining } from '../defenses/training/shard.js';
import { type HeldOutAttack, heldOutAccuracy } from '../defenses/training/validation.js';
import type { TfjsClassifier } from '../models/index.js';
import type { LossFn, PrepareFn } from '../train/loop.js';
import type { ParallelLoss } from '../train/parallel.js';
import { badOption, log, round } from './common.js';

export const ROBUST_DEFENSES = [
  'pgd-at',
  'fast-at',
  'trades',
  'mart',
  'grad-reg',
  'jacobian-reg',
] as const;
export type RobustDefense = (typeof ROBUST_DEFENSES)[number];
const ADVERSARIAL: readonly string[] = ['pgd-at', 'fast-at', 'trades', 'mart'];

export interface RobustOptions {
  defense: RobustDefense;
  eps?: number;
  norm: 'linf' | 'l2';
  attackSteps: number;
  stepSize?: number;
  beta?: number;
  lambda?: number;
  projections: number;
  mix: number;
  schedule: 'constant' | 'linear' | 'adaptive';
  valSplit?: number;
  patience?: number;
  stopOnOverfit?: boolean;
  /** fast-at: FGSM step and random-start radius as multiples of eps; project onto the ball. */
  fastAlpha?: number;
  fastNoise?: number;
  fastProject?: boolean;
  evalSteps: number;
  evalAttack: HeldOutAttack;
  bounds: [number, number];
  seed: number;
}

export interface RobustRun {
  lossFn: LossFn;
  prepare?: PrepareFn;
  /** The same loss, rebuilt in each worker for data-parallel training. */
  parallelLoss: ParallelLoss;
  record: Record<string, unknown>;
  /** Per-epoch fields; `stop` ends training after this epoch. */
  onEpoch: (
    classifier: TfjsClassifier,
    epoch: number,
    step: number,
    totalSteps: number,
  ) => Promise<{ fields: Record<string, number>; stop: boolean }>;
  /** After training: restores the best epoch's weights when early stopping; final record fields. */
  finish: (seconds: number) => Record<string, unknown>;
}

/** Checks the option combination; every message names the option. */
export function checkRobustOptions(o: RobustOptions): void {
  const d = `--defense ${o.defense}`;
  if (ADVERSARIAL.includes(o.defense) && o.eps === undefined)
    throw badOption(`train: --eps is required for ${d}`);
  if ((o.defense === 'trades' || o.defense === 'mart') && o.beta !== undefined && o.beta < 0)
    throw badOption(`train: --beta must be >= 0, got ${o.beta}`);
  if (o.beta !== undefined && o.defense !== 'trades' && o.defense !== 'mart')
    throw badOption(`train: --beta applies to --defense trades or mart, not ${o.defense}`);
  if ((o.defense === 'grad-reg' || o.defense === 'jacobian-reg') && o.lambda === undefined)
    throw badOption(`train: --lambda is required for ${d}`);
  if (o.lambda !== undefined && o.defense !== 'grad-reg' && o.defense !== 'jacobian-reg')
    throw badOption(
      `train: --lambda applies to --defense grad-reg or jacobian-reg, not ${o.defense}`,
    );
  const fastFlags = [
    o.fastAlpha !== undefined ? '--fast-alpha' : undefined,
    o.fastNoise !== undefined ? '--fast-noise' : undefined,
    o.fastProject === false ? '--no-fast-project' : undefined,
  ].filter((f) => f !== undefined);
  if (fastFlags.length > 0 && o.defense !== 'fast-at')
    throw badOption(`train: ${fastFlags[0]} applies to --defense fast-at, not ${o.defense}`);
  if (o.mix > 1) throw badOption(`train: --mix must be in [0, 1], got ${o.mix}`);
  if (o.mix > 0 && o.defense !== 'pgd-at')
    throw badOption(`train: --mix applies to --defense pgd-at, not ${o.defense}`);
  if (o.schedule !== 'constant' && !['pgd-at', 'trades', 'mart'].includes(o.defense))
    throw badOption(`train: --schedule ${o.schedule} applies to pgd-at, trades or mart`);
  if (o.valSplit !== undefined && !(o.valSplit > 0 && o.valSplit < 1))
    throw badOption(`train: --val-split must be in (0, 1), got ${o.valSplit}`);
  if (o.schedule === 'adaptive' && o.valSplit === undefined)
    throw badOption(
      'train: --schedule adaptive needs --val-split (it adapts to held-out accuracy)',
    );
  if (o.patience !== undefined && o.valSplit === undefined)
    throw badOption('train: --patience needs --val-split');
  if (o.eps === undefined && !ADVERSARIAL.includes(o.defense) && o.schedule !== 'constant')
    throw badOption('train: --schedule needs --eps');
}

function method(
  o: RobustOptions,
  eps: number,
  schedule?: EpsSchedule,
): { training: RobustTraining; params: object; name: string } {
  const threat = {
    eps,
    norm: o.norm,
    steps: o.attackSteps,
    stepSize: o.stepSize,
    bounds: o.bounds,
    seed: o.seed,
  };
  switch (o.defense) {
    case 'pgd-at': {
      const t = createPgdTraining({ ...threat, mix: o.mix }, schedule?.settingAt);
      return {
        training: t,
        params: t.config,
        name: 'PGD adversarial training (Madry et al. 2018)',
      };
    }
    case 'fast-at': {
      const t = createFastTraining({
        eps,
        norm: o.norm,
        bounds: o.bounds,
        seed: o.seed,
        alpha: o.fastAlpha,
        noise: o.fastNoise,
        project: o.fastProject,
      });
      const nfgsm = !t.config.project;
      return {
        training: t,
        params: t.config,
        name: nfgsm
          ? 'fast adversarial training, N-FGSM: FGSM from a wide random start, unprojected (de Jorge et al. 2022)'
          : 'fast adversarial training, FGSM with random start (Wong et al. 2020)',
      };
    }
    case 'trades': {
      const t = createTrades({ ...threat, beta: o.beta ?? 6 }, schedule?.settingAt);
      return { training: t, params: t.config, name: 'TRADES (Zhang et al. 2019)' };
    }
    case 'mart': {
      const t = createMart({ ...threat, beta: o.beta ?? 6 }, schedule?.settingAt);
      return { training: t, params: t.config, name: 'MART (Wang et al. 2020)' };
    }
    case 'grad-reg': {
      const t = createInputGradientRegularizer({ lambda: o.lambda ?? 0 });
      return {
        training: t,
        params: t.config,
        name: 'input-gradient regularisation, double backpropagation (Ross & Doshi-Velez 2018)',
      };
    }
    case 'jacobian-reg': {
      const t = createJacobianRegularizer({
        lambda: o.lambda ?? 0,
        projections: o.projections,
        seed: o.seed,
      });
      return {
        training: t,
        params: t.config,
        name: 'Jacobian regularisation, random projections (Hoffman et al. 2019)',
      };
    }
  }
}

/** Builds the run; `heldOut` is the validation split, or a fixed slice of the test set. */
export function robustRun(
  o: RobustOptions,
  model: tfl.LayersModel,
  heldOut: Dataset,
  heldOutName: string,
): RobustRun {
  checkRobustOptions(o);
  // Refuse a model the regulariser cannot differentiate twice before training starts.
  if (o.defense === 'grad-reg' || o.defense === 'jacobian-reg')
    checkTwiceDifferentiable(model, o.defense);
  // Regularisers are judged at --eps when given, else at 0.1 (L∞ on [0, 1] images).
  const eps = o.eps ?? 0.1;
  const schedule = ['pgd-at', 'trades', 'mart'].includes(o.defense)
    ? createSchedule({ kind: o.schedule, eps, steps: o.attackSteps })
    : undefined;
  const { training, params, name } = method(o, eps, schedule);
  const keepBest =
    o.valSplit !== undefined || (o.defense === 'fast-at' && o.stopOnOverfit === true);
  const best = keepBest
    ? new BestCheckpoint(model, o.patience ?? Number.POSITIVE_INFINITY)
    : undefined;
  let previous: RobustCheck | undefined;
  const events: string[] = [];
  let stoppedEarly = false;
  const evalConfig = { eps, norm: o.norm, attack: o.evalAttack, steps: o.evalSteps, seed: o.seed };
  return {
    lossFn: training.lossFn,
    prepare: training.prepare,
    parallelLoss: parallelTraining(
      o.defense,
      params,
      training.cost,
      o.defense === 'fast-at' ? undefined : schedule?.settingAt,
    ),
    record: {
      defense: o.defense,
      [o.defense]: {
        method: name,
        ...params,
        schedule: o.schedule,
        eval: { ...evalConfig, held_out: heldOutName, examples: heldOut.shape[0] },
      },
    },
    onEpoch: async (classifier, epoch, step, totalSteps) => {
      const acc = await heldOutAccuracy(classifier, heldOut, {
        ...evalConfig,
        withFgsm: o.defense === 'fast-at',
      });
      const fields: Record<string, number> = {
        clean_accuracy: acc.clean,
        robust_accuracy: acc.robust,
        gradient_evaluations_per_example: training.cost.perExample(),
      };
      if (schedule) {
        const s = schedule.current({ step, totalSteps });
        Object.assign(fields, { eps: s.eps, attack_steps: s.steps });
        if (o.schedule === 'adaptive') {
          const atTrainingEps =
            s.eps === eps
              ? acc.robust
              : (await heldOutAccuracy(classifier, heldOut, { ...evalConfig, eps: s.eps })).robust;
          fields.robust_accuracy_at_eps = atTrainingEps;
          fields.next_eps = schedule.endEpoch(atTrainingEps);
          log(
            `schedule: epoch ${epoch} trained at eps ${round(s.eps, 5)}, robust accuracy there ${round(atTrainingEps, 4)}; next eps ${round(fields.next_eps, 5)}`,
          );
        }
      }
      let stop = false;
      if (o.defense === 'fast-at') {
        fields.fgsm_accuracy = acc.fgsm;
        const verdict = detectCatastrophicOverfitting(
          previous,
          { pgd: acc.robust, fgsm: acc.fgsm },
          { attack: o.evalAttack === 'apgd-ce' ? 'APGD-CE' : 'PGD' },
        );
        fields.catastrophic_overfitting = verdict.collapsed ? 1 : 0;
        if (verdict.collapsed) {
          events.push(`epoch ${epoch}: ${verdict.reason}`);
          log(
            `catastrophic overfitting at epoch ${epoch}: ${verdict.reason}${o.stopOnOverfit ? '; stopping, keeping the best earlier epoch' : ''}`,
          );
          if (o.stopOnOverfit) stop = true;
        }
        // The reference is the best healthy epoch so far.
        if (!verdict.collapsed && (previous === undefined || acc.robust > previous.pgd)) {
          previous = { pgd: acc.robust, fgsm: acc.fgsm };
        }
      }
      if (best && !(o.defense === 'fast-at' && fields.catastrophic_overfitting === 1)) {
        if (best.update(epoch, acc.robust).stop) stop = true;
      }
      if (stop) stoppedEarly = true;
      return { fields, stop };
    },
    finish: (seconds) => {
      const restored = best?.bestEpoch;
      best?.restore();
      return {
        cost: {
          seconds: round(seconds, 2),
          gradient_evaluations_per_example: round(training.cost.perExample(), 4),
        },
        ...(best
          ? { best_epoch: restored, best_robust_accuracy: best.best, weights_from_epoch: restored }
          : {}),
        stopped_early: stoppedEarly,
        ...(o.defense === 'fast-at' ? { catastrophic_overfitting: events } : {}),
      };
    },
  };
}
