/**
 * `parry train`: trains a reference architecture on a data set and writes a LayersModel
 * directory plus training.json (per-epoch loss/accuracy, test accuracy, seconds, seed).
 * `--defense ibp` trains for certified robustness with IBP (Gowal et al. 2018) and records the
 * schedule and the test set's IBP-certified accuracy each epoch.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadDataset, takeFirst } from '../data/index.js';
import { WorkerPool } from '../engine/pool.js';
import { predictDataset } from '../evaluate/predict.js';
import {
  ARCHITECTURES,
  buildArchitecture,
  loadClassifier,
  saveLayersModel,
  TfjsClassifier,
} from '../models/index.js';
import { type BatchProgress, trainModel } from '../train/loop.js';
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
import { DEFENSES, type DefenseOptions, defenseRun } from './train-defenses.js';

interface TrainOptions extends CommonOptions, DefenseOptions {
  dataset: string;
  arch: string;
  epochs: number;
  batchSize: number;
  lr: number;
  optimizer: 'adam' | 'sgd' | 'momentum';
  dropout: number;
  weightDecay: number;
  labelSmoothing: number;
  noiseSigma: number;
  n?: number;
  bounds: [number, number];
  float16?: boolean;
  out: string;
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
      new Option('--defense <name>', 'robust training: none or ibp (certified, L-inf)')
        .choices(DEFENSES)
        .default('none'),
    )
    .option('--eps <e>', 'ibp: L-inf training radius; required', parsePositiveNumber)
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
  const inputShape = train.shape.slice(1);
  const model = buildArchitecture(opts.arch, {
    inputShape,
    numClasses: train.numClasses,
    dropout: opts.dropout,
    seed: opts.seed,
  });
  const classifier = new TfjsClassifier(model, { bounds: opts.bounds });
  const defense = defenseRun(opts, test);
  log(
    `parry train: ${opts.arch} on ${train.name} (${train.shape[0]} examples), backend ${backend}, seed ${opts.seed}`,
  );
  const progress = epochProgress(opts.epochs);
  // Data-parallel over one worker per core by default; --workers 1 trains in this thread. A
  // defence's loss runs in this thread only.
  const workers = defense.lossFn ? 1 : (opts.workers ?? availableParallelism());
  if (defense.lossFn && (opts.workers ?? 1) > 1)
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
      weightDecay: opts.weightDecay,
      labelSmoothing: opts.labelSmoothing,
      noiseSigma: opts.noiseSigma,
      seed: opts.seed,
    },
    {
      pool,
      lossFn: defense.lossFn,
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
      },
    },
  ).finally(() => pool?.close());
  const testAccuracy = result.epochs[result.epochs.length - 1].test_accuracy;
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
    optimizer: opts.optimizer,
    dropout: opts.dropout,
    weight_decay: opts.weightDecay,
    label_smoothing: opts.labelSmoothing,
    noise_sigma: opts.noiseSigma,
    ...defense.record,
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
