/**
 * A robust-training run (the registry's 'robust' methods): the method's loss, and per-epoch
 * bookkeeping — clean / PGD accuracy on a held-out set, the eps schedule, fast-at's catastrophic-overfitting guard and early stopping on held-out robust
 * accuracy (the best epoch's weights restored at the end).
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Dataset } from '../../data/index.js';
import type { TfjsClassifier } from '../../models/index.js';
import type { LossFn, PrepareFn } from '../../train/loop.js';
import type { ParallelLoss } from '../../train/parallel.js';
import { BestCheckpoint } from './early-stopping.js';
import { detectCatastrophicOverfitting, type RobustCheck } from './fast-at.js';
import type { TrainingMethodEntry } from './registry.js';
import { createSchedule } from './schedule.js';
import { checkTwiceDifferentiable } from './second-order.js';
import { parallelTraining } from './shard.js';
import { type HeldOutAttack, heldOutAccuracy } from './validation.js';

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

/** The options of a robust method, parsed by its registry schema. */
export type RobustOptions = Record<string, unknown> & {
  eps: number;
  norm: 'linf' | 'l2';
  seed: number;
  evalAttack: HeldOutAttack;
  evalSteps: number;
  schedule?: 'constant' | 'linear' | 'adaptive';
  attackSteps?: number;
  valSplit?: number;
  patience?: number;
  stopOnOverfit?: boolean;
};

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

/** Builds the run; `heldOut` is the validation split, or a fixed slice of the test set. */
export function robustRun(
  method: TrainingMethodEntry,
  o: RobustOptions,
  model: tfl.LayersModel,
  heldOut: { data: Dataset; name: string },
  bounds: [number, number],
  onLog: (message: string) => void = () => {},
): RobustRun {
  const defense = method.name;
  // Refuse a model the regulariser cannot differentiate twice before training starts.
  if (defense === 'grad-reg' || defense === 'jacobian-reg')
    checkTwiceDifferentiable(model, defense);
  // Regularisers are judged at eps (default 0.1, L∞ on [0, 1] images).
  const eps = o.eps;
  const schedule = method.adversarial
    ? createSchedule({ kind: o.schedule ?? 'constant', eps, steps: o.attackSteps as number })
    : undefined;
  const { training, params, name } = method.build!(o, bounds, schedule?.settingAt);
  const heldOutName = heldOut.name;
  const keepBest = o.valSplit !== undefined || (defense === 'fast-at' && o.stopOnOverfit === true);
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
      defense,
      params,
      training.cost,
      defense === 'fast-at' ? undefined : schedule?.settingAt,
    ),
    record: {
      defense: defense,
      [defense]: {
        method: name,
        ...params,
        schedule: o.schedule,
        eval: { ...evalConfig, held_out: heldOutName, examples: heldOut.data.shape[0] },
      },
    },
    onEpoch: async (classifier, epoch, step, totalSteps) => {
      const acc = await heldOutAccuracy(classifier, heldOut.data, {
        ...evalConfig,
        withFgsm: defense === 'fast-at',
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
              : (await heldOutAccuracy(classifier, heldOut.data, { ...evalConfig, eps: s.eps }))
                  .robust;
          fields.robust_accuracy_at_eps = atTrainingEps;
          fields.next_eps = schedule.endEpoch(atTrainingEps);
          onLog(
            `schedule: epoch ${epoch} trained at eps ${round(s.eps, 5)}, robust accuracy there ${round(atTrainingEps, 4)}; next eps ${round(fields.next_eps, 5)}`,
          );
        }
      }
      let stop = false;
      if (defense === 'fast-at') {
        fields.fgsm_accuracy = acc.fgsm;
        const verdict = detectCatastrophicOverfitting(
          previous,
          { pgd: acc.robust, fgsm: acc.fgsm },
          { attack: o.evalAttack === 'apgd-ce' ? 'APGD-CE' : 'PGD' },
        );
        fields.catastrophic_overfitting = verdict.collapsed ? 1 : 0;
        if (verdict.collapsed) {
          events.push(`epoch ${epoch}: ${verdict.reason}`);
          onLog(
            `catastrophic overfitting at epoch ${epoch}: ${verdict.reason}${o.stopOnOverfit ? '; stopping, keeping the best earlier epoch' : ''}`,
          );
          if (o.stopOnOverfit) stop = true;
        }
        // The reference is the best healthy epoch so far.
        if (!verdict.collapsed && (previous === undefined || acc.robust > previous.pgd)) {
          previous = { pgd: acc.robust, fgsm: acc.fgsm };
        }
      }
      if (best && !(defense === 'fast-at' && fields.catastrophic_overfitting === 1)) {
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
        ...(defense === 'fast-at' ? { catastrophic_overfitting: events } : {}),
      };
    },
  };
}
