/**
 * `parry train`: trains a reference architecture on a data set, plainly or with a training method
 * of the registry (`--defense`: robust training, regularisation, IBP certified training), or with
 * differential privacy (`--dp`: DP-SGD, src/defenses/privacy), and writes a LayersModel directory
 * plus training.json. The methods' options are generated from the registry's schemas
 * (src/defenses/training/registry.ts); the run is src/evaluate/train-run.ts.
 */

import { Command, InvalidArgumentError, Option } from 'commander';
import { TRAINING_METHODS } from '../defenses/training/registry.js';
import { checkOutputDir } from '../engine/output-path.js';
import { runTraining, type TrainRunOptions } from '../evaluate/train-run.js';
import { ARCHITECTURES } from '../models/index.js';
import type { BatchProgress } from '../train/loop.js';
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
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

type TrainOptions = CommonOptions &
  Omit<TrainRunOptions, 'backend' | 'method' | 'dp'> & {
    dp?: boolean;
    noiseMultiplier?: number;
    maxGradNorm?: number;
    delta?: number;
    dpClipping?: 'auto' | 'fast' | 'reference';
  };

/** The DP-SGD flags besides --dp, by option key. */
const DP_FLAGS = {
  noiseMultiplier: '--noise-multiplier',
  maxGradNorm: '--max-grad-norm',
  delta: '--delta',
  dpClipping: '--dp-clipping',
} as const;

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
      new Option(
        '--defense <name>',
        TRAINING_METHODS.map((m) => `${m.name}: ${m.description}`).join('; '),
      )
        .choices(TRAINING_METHODS.map((m) => m.name))
        .default('none'),
    );
  const keys = addEntryOptions(cmd, TRAINING_METHODS, ['seed']);
  addDpOptions(cmd);
  return withCommonOptions(cmd).action(async (opts: TrainOptions) => {
    const dp = dpOptions(opts);
    checkOutputDir(opts.out, '--out');
    const backend = await setUpBackend(opts);
    const method = { ...givenEntryOptions(cmd, keys), seed: opts.seed };
    const progress = epochProgress(opts.epochs);
    const summary = await withFlagNames(
      opts.defense,
      () =>
        runTraining(
          { ...opts, backend, method, dp },
          { onLog: log, onBatch: progress.update, onEpochEnd: progress.stop },
        ),
      keys,
    );
    const privacy = summary['dp-sgd'] as Record<string, number> | undefined;
    emit(summary, opts, () =>
      [
        `trained ${opts.arch} (${summary.params} parameters) in ${summary.seconds} s`,
        `test accuracy ${fixed(summary.test_accuracy)} (as stored, ${summary.weights_dtype}: ${fixed(summary.stored_test_accuracy)})`,
        ...(privacy
          ? [
              `DP-SGD: ε = ${privacy.epsilon.toFixed(2)} at δ = ${privacy.delta} (Balle et al. 2020: ${privacy.epsilon_balle.toFixed(2)}), ${privacy.steps} steps`,
            ]
          : []),
        `saved to ${summary.out}`,
      ].join('\n'),
    );
  });
}

/** `--dp` and its options (DP-SGD, Abadi et al. 2016; src/defenses/privacy/dp-sgd.ts). */
export function addDpOptions(cmd: Command): void {
  cmd
    .option(
      '--dp',
      'DP-SGD: Poisson batches of expected size --batch-size, per-example clipping to --max-grad-norm, Gaussian noise; ε at --delta recorded',
    )
    .option(
      `${DP_FLAGS.noiseMultiplier} <s>`,
      'DP-SGD: σ, noise std over the clipping norm (required with --dp)',
      parsePositiveNumber,
    )
    .option(
      `${DP_FLAGS.maxGradNorm} <c>`,
      'DP-SGD: per-example gradient L2 clipping norm C (default 1)',
      parsePositiveNumber,
    )
    .option(`${DP_FLAGS.delta} <d>`, 'DP-SGD: δ of the (ε, δ) guarantee (default 1e-5)', parseDelta)
    .addOption(
      new Option(
        `${DP_FLAGS.dpClipping} <path>`,
        'DP-SGD: per-example clipping path; auto = fast (Dense, Conv2D) when every trainable layer has a fast rule',
      ).choices(['auto', 'fast', 'reference']),
    );
}

/** The DP-SGD flags of a command that has them (`addDpOptions`) and `--defense`. */
export type DpFlags = Pick<
  TrainOptions,
  'dp' | 'noiseMultiplier' | 'maxGradNorm' | 'delta' | 'dpClipping' | 'defense'
>;

/** The DP-SGD options of the run, or undefined without --dp; DP flags without --dp are refused. */
export function dpOptions(
  opts: DpFlags,
): (TrainRunOptions['dp'] & { noiseMultiplier: number; maxGradNorm: number }) | undefined {
  const given = (Object.keys(DP_FLAGS) as (keyof typeof DP_FLAGS)[]).filter(
    (k) => opts[k] !== undefined,
  );
  if (!opts.dp) {
    if (given.length > 0) throw badOption(`${DP_FLAGS[given[0]]} needs --dp`);
    return undefined;
  }
  if (opts.noiseMultiplier === undefined) throw badOption('--dp needs --noise-multiplier');
  if (opts.defense !== 'none')
    throw badOption(
      `--dp trains with plain cross-entropy; it does not combine with --defense ${opts.defense}`,
    );
  return {
    noiseMultiplier: opts.noiseMultiplier,
    ...(opts.maxGradNorm !== undefined ? { maxGradNorm: opts.maxGradNorm } : { maxGradNorm: 1 }),
    ...(opts.delta !== undefined ? { delta: opts.delta } : {}),
    ...(opts.dpClipping !== undefined ? { clipping: opts.dpClipping } : {}),
  };
}

function parseDelta(value: string): number {
  const d = Number(value);
  if (value.trim() === '' || !(d > 0 && d < 1))
    throw new InvalidArgumentError(`must be in (0, 1), got '${value}'`);
  return d;
}

const fixed = (v: unknown) => (v as number).toFixed(4);

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
