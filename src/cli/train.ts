/**
 * `parry train`: trains a reference architecture on a data set and writes a LayersModel
 * directory plus training.json (per-epoch loss/accuracy, test accuracy, seconds, seed).
 * `--defense ibp` trains for certified robustness with IBP (Gowal et al. 2018) and records the
 * schedule and the test set's IBP-certified accuracy each epoch.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Command, Option } from 'commander';
import { certifyDataset, fraction } from '../certify/index.js';
import { type Dataset, loadDataset, splitDataset, takeFirst } from '../data/index.js';
import { createIbpLoss, type IbpTrainingConfig, ibpSchedule } from '../defenses/index.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { Rng } from '../engine/rng.js';
import { predictDataset } from '../evaluate/predictions.js';
import {
  ARCHITECTURES,
  buildArchitecture,
  loadClassifier,
  saveLayersModel,
  TfjsClassifier,
} from '../models/index.js';
import { type BatchProgress, type LossFn, type PrepareFn, trainModel } from '../train/loop.js';
import type { ParallelLoss } from '../train/parallel.js';
import {
  badOption,
  type CommonOptions,
  DATASET_HELP,
  emit,
  log,
  parseBounds,
  parseNonNegativeNumber,
  parsePositiveInt,
  parsePositiveNumber,
  progressBar,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { ROBUST_DEFENSES, type RobustOptions, robustRun } from './train-robust.js';

interface TrainOptions extends CommonOptions, Omit<RobustOptions, 'defense'> {
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
  float16?: boolean;
  out: string;
  defense: Defense;
  ibpWarmup: number;
  ibpRamp: number;
  certifyEps?: number;
}

/** Training defences `--defense` accepts; 'none' is plain cross-entropy. */
const DEFENSES = ['none', 'ibp', ...ROBUST_DEFENSES] as const;
type Defense = (typeof DEFENSES)[number];

/** What a defence brings to the run: its batch loss and per-epoch bookkeeping. */
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

/** Options that belong to the robust-training defences, with the value that means "not set". */
const ROBUST_ONLY: [keyof TrainOptions, string, unknown][] = [
  ['beta', '--beta', undefined],
  ['lambda', '--lambda', undefined],
  ['mix', '--mix', 0],
  ['schedule', '--schedule', 'constant'],
  ['valSplit', '--val-split', undefined],
  ['patience', '--patience', undefined],
  ['stepSize', '--step-size', undefined],
  ['stopOnOverfit', '--stop-on-overfit', undefined],
  ['fastAlpha', '--fast-alpha', undefined],
  ['fastNoise', '--fast-noise', undefined],
  ['fastProject', '--no-fast-project', true],
  ['evalAttack', '--eval-attack', 'pgd'],
];

function defenseRun(
  opts: TrainOptions,
  test: Dataset,
  model: tfl.LayersModel,
  heldOut: { data: Dataset; name: string },
): DefenseRun {
  if (opts.defense === 'none' || opts.defense === 'ibp') {
    for (const [key, flag, unset] of ROBUST_ONLY) {
      if (opts[key] !== unset)
        throw badOption(`train: ${flag} does not apply to --defense ${opts.defense}`);
    }
  }
  if (opts.defense === 'none') return { record: { defense: 'none' } };
  if (opts.defense !== 'ibp') {
    const run = robustRun({ ...opts, defense: opts.defense }, model, heldOut.data, heldOut.name);
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

export function trainCommand(): Command {
  const cmd = new Command('train')
    .description('train a reference architecture and save it as a TF.js LayersModel directory')
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .addOption(
      new Option('--arch <name>', 'architecture')
        .choices(ARCHITECTURES.map((a) => a.name))
        .default('cnn-small'),
    )
    .option('--epochs <n>', 'passes over the training set', parsePositiveInt, 5)
    .option('--batch-size <n>', 'examples per step', parsePositiveInt, 128)
    .option('--lr <x>', 'learning rate', parsePositiveNumber, 1e-3)
    .addOption(
      new Option('--optimizer <name>', 'optimizer')
        .choices(['adam', 'sgd', 'momentum'])
        .default('adam'),
    )
    .addOption(
      new Option(
        '--lr-schedule <kind>',
        'cyclic: learning rate rises from 0 to --lr at 2/5 of training and falls back to 0 (fast-at)',
      )
        .choices(['constant', 'cyclic'])
        .default('constant'),
    )
    .option(
      '--dropout <p>',
      'dropout rate before dense layers (0 = none)',
      parseNonNegativeNumber,
      0,
    )
    .option('--weight-decay <w>', 'L2 penalty on kernels', parseNonNegativeNumber, 0)
    .option('--label-smoothing <s>', 'label smoothing', parseNonNegativeNumber, 0)
    .option(
      '--noise-sigma <s>',
      'Gaussian data augmentation N(0, s^2) (base models for randomized smoothing)',
      parseNonNegativeNumber,
      0,
    )
    .option('--n <n>', 'use only the first N training examples', parsePositiveInt)
    .option('--bounds <lo,hi>', 'valid input range stored with the model', parseBounds, [0, 1] as [
      number,
      number,
    ])
    .option('--float16', 'store weights as float16 (half the size; dequantized on load)')
    .requiredOption('--out <dir>', 'output model directory')
    .addOption(
      new Option('--defense <name>', 'robust training or regularisation (ibp: certified, L-inf)')
        .choices(DEFENSES)
        .default('none'),
    )
    .option(
      '--eps <e>',
      'training radius; required for ibp, pgd-at, fast-at, trades, mart (regularisers: eval radius, default 0.1)',
      parsePositiveNumber,
    )
    .addOption(
      new Option('--norm <norm>', 'threat model of adversarial training')
        .choices(['linf', 'l2'])
        .default('linf'),
    )
    .option('--attack-steps <k>', 'pgd-at, trades, mart: inner PGD steps', parsePositiveInt, 10)
    .option('--step-size <a>', 'inner PGD step (default 2.5*eps/steps)', parsePositiveNumber)
    .option('--beta <b>', 'trades, mart: weight of the KL term (default 6)', parseNonNegativeNumber)
    .option(
      '--lambda <l>',
      'grad-reg, jacobian-reg: weight of the penalty; required',
      parseNonNegativeNumber,
    )
    .option(
      '--projections <n>',
      'jacobian-reg: random projections per example',
      parsePositiveInt,
      1,
    )
    .option(
      '--mix <f>',
      'pgd-at: fraction of the loss on clean examples',
      parseNonNegativeNumber,
      0,
    )
    .addOption(
      new Option('--schedule <kind>', 'pgd-at, trades, mart: eps schedule')
        .choices(['constant', 'linear', 'adaptive'])
        .default('constant'),
    )
    .option(
      '--val-split <f>',
      'hold out this fraction of the training set: per-epoch robust accuracy, early stopping on it (best epoch restored)',
      parsePositiveNumber,
    )
    .option(
      '--patience <n>',
      'with --val-split: stop after n epochs without a better robust accuracy',
      parsePositiveInt,
    )
    .option(
      '--stop-on-overfit',
      'fast-at: stop at catastrophic overfitting, keeping the best earlier epoch',
    )
    .option(
      '--fast-alpha <a>',
      'fast-at: FGSM step as a multiple of eps (default 1.25; N-FGSM: 1)',
      parsePositiveNumber,
    )
    .option(
      '--fast-noise <k>',
      'fast-at: random-start radius as a multiple of eps (default 1; N-FGSM: 2)',
      parseNonNegativeNumber,
    )
    .option(
      '--no-fast-project',
      'fast-at: keep the FGSM point unprojected (N-FGSM, de Jorge et al. 2022: up to (noise + alpha)·eps from x)',
    )
    .addOption(
      new Option(
        '--eval-attack <name>',
        'attack of the per-epoch held-out robust accuracy (early stopping, overfitting guard, adaptive schedule); apgd-ce is stronger on models that mask gradients',
      )
        .choices(['pgd', 'apgd-ce'])
        .default('pgd'),
    )
    .option('--eval-steps <k>', 'steps of --eval-attack', parsePositiveInt, 10)
    .option(
      '--ibp-warmup <f>',
      'ibp: fraction of training with eps 0 and kappa 1',
      parseNonNegativeNumber,
      0.1,
    )
    .option(
      '--ibp-ramp <f>',
      'ibp: fraction of training over which eps ramps up and kappa down to 0.5',
      parseNonNegativeNumber,
      0.5,
    )
    .option(
      '--certify-eps <e>',
      'ibp: L-inf radius of the IBP-certified test accuracy recorded each epoch (default --eps)',
      parseNonNegativeNumber,
    );
  return withCommonOptions(cmd).action((opts: TrainOptions) => runTrain(opts));
}

async function runTrain(opts: TrainOptions): Promise<void> {
  const backend = await setUpBackend(opts);
  if (opts.dropout >= 1) throw badOption(`--dropout must be < 1, got ${opts.dropout}`);
  if (opts.labelSmoothing >= 1)
    throw badOption(`--label-smoothing must be < 1, got ${opts.labelSmoothing}`);
  let train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  const test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
  if (opts.n !== undefined) train = takeFirst(train, opts.n);
  // Robust accuracy each epoch is measured on the validation split, or on the first 500 test
  // examples when there is none (reported as such; early stopping needs the split).
  let heldOut = { data: takeFirst(test, Math.min(500, test.shape[0])), name: 'test[:500]' };
  if (opts.valSplit !== undefined && opts.valSplit > 0 && opts.valSplit < 1) {
    const split = splitDataset(train, opts.valSplit, new Rng(opts.seed));
    train = split.train;
    heldOut = { data: split.validation, name: `validation (${opts.valSplit} of train)` };
  }
  const inputShape = train.shape.slice(1);
  const model = buildArchitecture(opts.arch, {
    inputShape,
    numClasses: train.numClasses,
    dropout: opts.dropout,
    seed: opts.seed,
  });
  const classifier = new TfjsClassifier(model, { bounds: opts.bounds });
  const defense = defenseRun(opts, test, model, heldOut);
  log(
    `parry train: ${opts.arch} on ${train.name} (${train.shape[0]} examples), backend ${backend}, seed ${opts.seed}`,
  );
  const progress = epochProgress(opts.epochs);
  // Data-parallel over one worker per core by default; --workers 1 trains in this thread. A
  // defence's loss goes to the workers when they can rebuild it (robust training); IBP's runs
  // in this thread.
  const workers = defense.lossFn && !defense.parallelLoss ? 1 : chooseWorkers(opts.workers);
  if (defense.lossFn && !defense.parallelLoss && (opts.workers ?? 1) > 1)
    log(`--defense ${opts.defense} trains in one thread`);
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
      onBatch: progress.update,
      onEpoch: async (r) => {
        progress.stop();
        r.test_accuracy = (await predictDataset(classifier, test)).accuracy;
        // The schedule of the epoch's last step.
        const steps = Math.ceil(train.shape[0] / opts.batchSize);
        const last = r.epoch * steps - 1;
        Object.assign(r, await defense.onEpoch?.(classifier, last, opts.epochs * steps));
        const extra = Object.entries(r)
          .filter(([k]) => !['epoch', 'loss', 'accuracy', 'seconds', 'test_accuracy'].includes(k))
          .map(([k, v]) => `, ${k} ${round(v, 4)}`)
          .join('');
        log(
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
  await mkdir(opts.out, { recursive: true });
  const metadata = {
    arch: opts.arch,
    bounds: opts.bounds,
    classNames: train.classNames,
    dataset: opts.dataset,
  };
  await saveLayersModel(model, opts.out, { float16: opts.float16 === true, metadata });
  // The accuracy of the model as stored (float16 rounding included), read back from disk.
  const stored = await loadClassifier(opts.out);
  const storedAccuracy = (await predictDataset(stored, test)).accuracy;
  const storedExtra = (await defense.onStored?.(stored)) ?? {};
  stored.dispose?.();
  const summary = {
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
    ...finished,
    seed: opts.seed,
    backend,
    workers,
    params: model.countParams(),
    weights_dtype: opts.float16 ? 'float16' : 'float32',
    per_epoch: result.epochs.map((e) => ({ ...e, seconds: round(e.seconds, 2) })),
    test_accuracy: testAccuracy,
    stored_test_accuracy: storedAccuracy,
    ...storedExtra,
    seconds: round(result.seconds, 2),
    out: opts.out,
  };
  await writeFile(path.join(opts.out, 'training.json'), `${JSON.stringify(summary, null, 2)}\n`);
  model.dispose();
  emit(summary, opts, () =>
    [
      `trained ${opts.arch} (${summary.params} parameters) in ${summary.seconds} s`,
      `test accuracy ${testAccuracy.toFixed(4)} (as stored, ${summary.weights_dtype}: ${storedAccuracy.toFixed(4)})`,
      `saved to ${summary.out}`,
    ].join('\n'),
  );
}

/** An epoch-by-epoch progress bar on stderr: epoch, batches, loss, accuracy, throughput, ETA. */
function epochProgress(epochs: number): { update: (p: BatchProgress) => void; stop: () => void } {
  const bar = progressBar(
    'epoch {epoch}/{epochs} |{bar}| {value}/{total} batches | loss {loss} | acc {acc} | {rate} ex/s | ETA {eta_formatted}',
  );
  let current = 0;
  return {
    update: (p) => {
      const payload = {
        epoch: p.epoch,
        epochs,
        loss: p.loss.toFixed(4),
        acc: p.accuracy.toFixed(4),
        rate: Math.round(p.examplesPerSecond),
      };
      if (current !== p.epoch) {
        if (current !== 0) bar.stop();
        bar.start(p.numBatches, p.batch, payload);
        current = p.epoch;
      } else bar.update(p.batch, payload);
    },
    stop: () => {
      if (current !== 0) bar.stop();
      current = 0;
    },
  };
}
