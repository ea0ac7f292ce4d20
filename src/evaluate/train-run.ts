/**
 * A `parry train` run: trains a reference architecture on a data set, with a training method of
 * the registry (src/defenses/training/registry.ts), measures it each epoch (test accuracy, the
 * method's held-out robust accuracy or IBP-certified accuracy), and stores it as a LayersModel
 * directory plus training.json. Progress and log lines go to callbacks; nothing is printed.
 */

import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { certifyDataset, fraction } from '../certify/bound-certificates.js';
import {
  type Dataset,
  firstExamples,
  loadDataset,
  splitDataset,
  takeFirst,
} from '../data/index.js';
import { createIbpLoss, type IbpTrainingConfig, ibpSchedule } from '../defenses/index.js';
import { createDpSgd, type DpSgd, type DpSgdConfig } from '../defenses/privacy/index.js';
import { TRAINING_METHODS } from '../defenses/training/registry.js';
import { type RobustOptions, robustRun } from '../defenses/training/robust-training.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { Rng } from '../engine/rng.js';
import { ParryError } from '../errors.js';
import {
  buildArchitecture,
  loadClassifier,
  saveLayersModel,
  TfjsClassifier,
} from '../models/index.js';
import { findEntry, parseEntryOptions } from '../options.js';
import { type BatchProgress, type LossFn, type PrepareFn, trainModel } from '../train/loop.js';
import type { ParallelLoss } from '../train/parallel.js';
import { predictDataset } from './predictions.js';

export interface TrainRunOptions {
  dataset: string;
  arch: string;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'adam' | 'sgd' | 'momentum';
  lrSchedule: 'constant' | 'cyclic';
  dropout: number;
  weightDecay: number;
  labelSmoothing: number;
  noiseSigma: number;
  n?: number;
  bounds: [number, number];
  float16?: boolean;
  out: string;
  seed: number;
  workers?: number;
  backend: string;
  /** A training method of the registry, and the options it reads. */
  defense: string;
  method: Record<string, unknown>;
  /**
   * DP-SGD (src/defenses/privacy/dp-sgd.ts) in place of shuffled batches and the plain gradient:
   * Poisson batches of expected size batchSize, clipped per-example gradients, Gaussian noise.
   * Only with the defense 'none'; trains in one thread; the seed is the run's.
   */
  dp?: Omit<Partial<DpSgdConfig>, 'seed'>;
}

export interface TrainRunHooks {
  onLog?: (message: string) => void;
  onBatch?: (p: BatchProgress) => void;
  /** Called when an epoch ends, before its measurements (e.g. to close a progress bar). */
  onEpochEnd?: () => void;
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

/** What a training method brings to the run: its batch loss and per-epoch bookkeeping. */
interface DefenseRun {
  lossFn?: LossFn;
  /** Per-batch adversarial examples, crafted outside the gradient tape. */
  prepare?: PrepareFn;
  /** The loss as workers rebuild it, when it can train data-parallel. */
  parallelLoss?: ParallelLoss;
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
  /** Set by onEpoch to end training after the epoch (early stopping). */
  stop?: boolean;
  /** After training, before saving (e.g. restore the best epoch); extra record fields. */
  finish?: (seconds: number) => Record<string, unknown>;
}

function defenseRun(
  opts: TrainRunOptions,
  test: Dataset,
  model: tfl.LayersModel,
  heldOut: { data: Dataset; name: string },
  onLog: (message: string) => void,
): DefenseRun {
  const entry = findEntry(TRAINING_METHODS, opts.defense, 'training method');
  const o = parseEntryOptions(entry, opts.method);
  if (entry.kind === 'plain') return { record: { defense: 'none' } };
  if (entry.kind === 'robust') {
    const run = robustRun(entry, o as RobustOptions, model, heldOut, opts.bounds, onLog);
    const defense: DefenseRun = {
      lossFn: run.lossFn,
      prepare: run.prepare,
      parallelLoss: run.parallelLoss,
      record: run.record,
      finish: run.finish,
    };
    let epoch = 0;
    defense.onEpoch = async (classifier, step, totalSteps) => {
      const { fields, stop } = await run.onEpoch(classifier, ++epoch, step, totalSteps);
      defense.stop = stop;
      return fields;
    };
    return defense;
  }
  const eps = o.eps as number;
  const { config, lossFn } = createIbpLoss({
    eps,
    warmup: o.ibpWarmup as number,
    ramp: o.ibpRamp as number,
    bounds: opts.bounds,
  });
  const certifyEps = (o.certifyEps as number | undefined) ?? eps;
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

/** DP-SGD for the run (plain cross-entropy only), with the run's seed and label smoothing. */
function dpSgdRun(opts: TrainRunOptions, model: tfl.LayersModel, examples: number): DpSgd {
  if (opts.defense !== 'none')
    throw new ParryError(
      'BAD_OPTION',
      `train: DP-SGD trains with plain cross-entropy; it does not combine with the defense '${opts.defense}'`,
    );
  return createDpSgd(
    model,
    { ...opts.dp, seed: opts.seed },
    { examples, batchSize: opts.batchSize, labelSmoothing: opts.labelSmoothing },
  );
}

/** Trains, stores and measures; returns what training.json holds (it is written too). */
export async function runTraining(
  opts: TrainRunOptions,
  hooks: TrainRunHooks = {},
): Promise<Record<string, unknown>> {
  const onLog = hooks.onLog ?? (() => {});
  // The method's options and the output folder are checked before any data is loaded.
  parseEntryOptions(findEntry(TRAINING_METHODS, opts.defense, 'training method'), opts.method);
  checkOutputDir(opts.out, 'out');
  const backend = opts.backend;
  let train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  const test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
  if (opts.n !== undefined) train = firstExamples(train, opts.n);
  // Robust accuracy each epoch is measured on the validation split, or on the first 500 test
  // examples when there is none (reported as such; early stopping needs the split).
  let heldOut = { data: takeFirst(test, Math.min(500, test.shape[0])), name: 'test[:500]' };
  const valSplit = opts.method.valSplit as number | undefined;
  if (valSplit !== undefined && valSplit > 0 && valSplit < 1) {
    const split = splitDataset(train, valSplit, new Rng(opts.seed));
    train = split.train;
    heldOut = { data: split.validation, name: `validation (${valSplit} of train)` };
  }
  const inputShape = train.shape.slice(1);
  const model = buildArchitecture(opts.arch, {
    inputShape,
    numClasses: train.numClasses,
    dropout: opts.dropout,
    seed: opts.seed,
  });
  const classifier = new TfjsClassifier(model, { bounds: opts.bounds });
  const defense = defenseRun(opts, test, model, heldOut, onLog);
  const dp = opts.dp ? dpSgdRun(opts, model, train.shape[0]) : undefined;
  onLog(
    `parry train: ${opts.arch} on ${train.name} (${train.shape[0]} examples), backend ${backend}, seed ${opts.seed}`,
  );
  // Data-parallel over one worker per core by default; --workers 1 trains in this thread. A
  // defense's loss goes to the workers when they can rebuild it (robust training); IBP's runs
  // in this thread.
  const oneThread = dp !== undefined || (defense.lossFn !== undefined && !defense.parallelLoss);
  const workers = oneThread ? 1 : chooseWorkers(opts.workers);
  if (oneThread && (opts.workers ?? 1) > 1)
    onLog(`${dp ? 'dp-sgd' : opts.defense} trains in one thread`);
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const result = await trainModel(
    model,
    train,
    {
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: opts.lr,
      optimizer: opts.optimizer,
      lrSchedule: opts.lrSchedule,
      weightDecay: opts.weightDecay,
      labelSmoothing: opts.labelSmoothing,
      noiseSigma: opts.noiseSigma,
      seed: opts.seed,
    },
    {
      pool,
      lossFn: defense.lossFn,
      prepare: defense.prepare,
      parallelLoss: defense.parallelLoss,
      gradientStep: dp?.step,
      onBatch: hooks.onBatch,
      onEpoch: async (r) => {
        hooks.onEpochEnd?.();
        r.test_accuracy = (await predictDataset(classifier, test)).accuracy;
        // The schedule of the epoch's last step.
        const steps = Math.ceil(train.shape[0] / opts.batchSize);
        const last = r.epoch * steps - 1;
        Object.assign(r, await defense.onEpoch?.(classifier, last, opts.epochs * steps));
        if (dp) r.epsilon = dp.privacy().epsilon;
        const extra = Object.entries(r)
          .filter(([k]) => !['epoch', 'loss', 'accuracy', 'seconds', 'test_accuracy'].includes(k))
          .map(([k, v]) => `, ${k} ${round(v, 4)}`)
          .join('');
        onLog(
          `epoch ${r.epoch}: loss ${r.loss.toFixed(4)}, train acc ${r.accuracy.toFixed(4)}, test acc ${r.test_accuracy.toFixed(4)}${extra}, ${r.seconds.toFixed(1)} s`,
        );
        return defense.stop ? 'stop' : undefined;
      },
    },
  ).finally(() => pool?.close());
  const finished = defense.finish?.(result.seconds) ?? {};
  // After early stopping the stored weights are the best epoch's: report their test accuracy.
  const testAccuracy =
    'weights_from_epoch' in finished
      ? (await predictDataset(classifier, test)).accuracy
      : result.epochs[result.epochs.length - 1].test_accuracy;
  const metadata = {
    arch: opts.arch,
    bounds: opts.bounds,
    classNames: train.classNames,
    dataset: opts.dataset,
  };
  // The model, measured as stored, and training.json appear in opts.out together (a crash
  // leaves the previous contents, never half a model).
  const summary: Record<string, unknown> = {};
  await writeFolder(
    opts.out,
    async (dir) => {
      await saveLayersModel(model, dir, { float16: opts.float16 === true, metadata });
      // The accuracy of the model as stored (float16 rounding included), read back from disk.
      const stored = await loadClassifier(dir);
      const storedAccuracy = (await predictDataset(stored, test)).accuracy;
      const storedExtra = (await defense.onStored?.(stored)) ?? {};
      const storedEngine = stored.engine?.name ?? 'tfjs';
      stored.dispose?.();
      Object.assign(summary, {
        command: 'train',
        arch: opts.arch,
        dataset: opts.dataset,
        train_examples: train.shape[0],
        test_examples: test.shape[0],
        epochs: opts.epochs,
        batch_size: opts.batchSize,
        lr: opts.lr,
        lr_schedule: opts.lrSchedule,
        optimizer: opts.optimizer,
        dropout: opts.dropout,
        weight_decay: opts.weightDecay,
        label_smoothing: opts.labelSmoothing,
        noise_sigma: opts.noiseSigma,
        ...defense.record,
        ...(dp ? { defense: 'dp-sgd', 'dp-sgd': dp.record() } : {}),
        ...finished,
        seed: opts.seed,
        backend,
        // The engine the stored model was measured on; adversarial crafting ran on the same one
        // (both follow $PARRY_ENGINE and cover the same layers).
        engine: storedEngine,
        workers,
        params: model.countParams(),
        weights_dtype: opts.float16 ? 'float16' : 'float32',
        per_epoch: result.epochs.map((e) => ({ ...e, seconds: round(e.seconds, 2) })),
        test_accuracy: testAccuracy,
        stored_test_accuracy: storedAccuracy,
        ...storedExtra,
        seconds: round(result.seconds, 2),
        out: opts.out,
      });
      await writeFile(path.join(dir, 'training.json'), `${JSON.stringify(summary, null, 2)}\n`);
    },
    ['model.json', 'training.json'],
  );
  model.dispose();
  return summary;
}
