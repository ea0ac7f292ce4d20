/**
 * The training defences of `parry train --defense`: each brings its batch loss and its own
 * bookkeeping (parameters and per-epoch figures for training.json). Add one here and to
 * `DEFENSES`.
 */
import { certifyDataset, fraction } from '../certify/index.js';
import type { Dataset } from '../data/index.js';
import { createIbpLoss, type IbpTrainingConfig, ibpSchedule } from '../defenses/index.js';
import type { TfjsClassifier } from '../models/index.js';
import type { LossFn } from '../train/loop.js';
import { badOption } from './common.js';

/** What `defenseRun` reads from the command's options. */
export interface DefenseOptions {
  defense: Defense;
  eps?: number;
  ibpWarmup: number;
  ibpRamp: number;
  certifyEps?: number;
  bounds: [number, number];
}

/** Training defences `--defense` accepts; 'none' is plain cross-entropy. */
export const DEFENSES = ['none', 'ibp'] as const;
export type Defense = (typeof DEFENSES)[number];

/** What a defence brings to the run: its batch loss and per-epoch bookkeeping. */
export interface DefenseRun {
  lossFn?: LossFn;
  /** Parameters for training.json. */
  record: Record<string, unknown>;
  /** Extra per-epoch fields, given the training progress at the epoch's end. */
  onEpoch?: (
    classifier: TfjsClassifier,
    step: number,
    totalSteps: number,
  ) => Promise<Record<string, number>>;
  /** Extra final fields for the model as stored. */
  onStored?: (classifier: TfjsClassifier) => Promise<Record<string, number>>;
}

export function defenseRun(opts: DefenseOptions, test: Dataset): DefenseRun {
  if (opts.defense === 'none') return { record: { defense: 'none' } };
  const eps = opts.eps;
  if (eps === undefined) throw badOption('train: --eps is required for --defense ibp');
  if (opts.ibpWarmup > 1 || opts.ibpRamp > 1 || opts.ibpWarmup + opts.ibpRamp > 1) {
    throw badOption(
      `train: --ibp-warmup + --ibp-ramp must be <= 1, got ${opts.ibpWarmup} + ${opts.ibpRamp}`,
    );
  }
  const { config, lossFn } = createIbpLoss({
    eps,
    warmup: opts.ibpWarmup,
    ramp: opts.ibpRamp,
    bounds: opts.bounds,
  });
  const certifyEps = opts.certifyEps ?? eps;
  const certified = async (classifier: TfjsClassifier) =>
    fraction(
      (await certifyDataset(classifier, test, { method: 'ibp', eps: certifyEps, batchSize: 500 }))
        .certified,
    );
  return {
    lossFn,
    record: { defense: 'ibp', ibp: ibpRecord(config, certifyEps) },
    onEpoch: async (classifier, step, totalSteps) => ({
      ...ibpSchedule(config, { step, totalSteps }),
      test_ibp_certified: await certified(classifier),
    }),
    onStored: async (classifier) => ({
      stored_test_ibp_certified_accuracy: await certified(classifier),
    }),
  };
}

function ibpRecord(c: IbpTrainingConfig, certifyEps: number) {
  return {
    method: 'IBP (Gowal et al. 2018)',
    eps: c.eps,
    warmup: c.warmup,
    ramp: c.ramp,
    kappa_start: 1,
    kappa_end: c.kappaEnd,
    certify_eps: certifyEps,
  };
}
