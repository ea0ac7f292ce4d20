/**
 * `parry train-denoiser`: trains the small convolutional denoising autoencoder of the `denoiser`
 * and `magnet` preprocessors on a data set and saves it as a TF.js LayersModel directory. Reports
 * the reconstruction error on noisy test inputs next to the error of the noise itself.
 */

import * as tf from '@tensorflow/tfjs-core';
import { Command } from 'commander';
import { exampleSize, firstExamples, loadDataset, takeFirst } from '../data/index.js';
import {
  buildDenoiser,
  loadDenoiser,
  reconstruct,
  saveDenoiser,
  trainDenoiser,
} from '../defenses/preprocess/autoencoder.js';
import { checkOutputDir } from '../engine/output-path.js';
import { Rng } from '../engine/rng.js';
import {
  type CommonOptions,
  DATASET_HELP,
  emit,
  log,
  parsePositiveInt,
  parsePositiveNumber,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';

interface TrainDenoiserOptions extends CommonOptions {
  dataset: string;
  noiseSigma: number;
  epochs: number;
  batchSize: number;
  lr: number;
  filters: number;
  n?: number;
  out: string;
}

export function trainDenoiserCommand(): Command {
  const cmd = new Command('train-denoiser')
    .description(
      'train a denoising autoencoder (for --preprocess denoiser:model=DIR / magnet:model=DIR)',
    )
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .option(
      '--noise-sigma <s>',
      'std of the Gaussian noise it learns to remove',
      parsePositiveNumber,
      0.1,
    )
    .option('--epochs <n>', 'passes over the training set', parsePositiveInt, 5)
    .option('--batch-size <n>', 'examples per step', parsePositiveInt, 16)
    .option('--lr <x>', 'Adam learning rate', parsePositiveNumber, 3e-3)
    .option('--filters <n>', 'channels of the hidden convolutions', parsePositiveInt, 16)
    .option('--n <n>', 'use only the first N training examples', parsePositiveInt)
    .requiredOption('--out <dir>', 'output model directory');
  return withCommonOptions(cmd).action((opts: TrainDenoiserOptions) => runTrainDenoiser(opts));
}

/** Mean squared error of noisy inputs and of their reconstructions against the clean ones. */
async function reconstructionErrors(
  dir: string,
  x: Float32Array,
  shape: number[],
  sigma: number,
  seed: number,
): Promise<{ noisy: number; reconstructed: number }> {
  const model = await loadDenoiser(dir);
  const rng = new Rng(seed);
  const noisy = Float32Array.from(x, (v) => Math.min(1, Math.max(0, v + sigma * rng.normal())));
  const [a, b] = tf.tidy(() => {
    const clean = tf.tensor(x, shape);
    const input = tf.tensor4d(noisy, shape as [number, number, number, number]);
    return [
      tf.mean(tf.squaredDifference(input, clean)),
      tf.mean(tf.squaredDifference(reconstruct(model, input, [0, 1]), clean)),
    ];
  });
  const out = { noisy: (await a.data())[0], reconstructed: (await b.data())[0] };
  tf.dispose([a, b]);
  model.dispose();
  return out;
}

async function runTrainDenoiser(opts: TrainDenoiserOptions): Promise<void> {
  checkOutputDir(opts.out, '--out');
  const backend = await setUpBackend(opts);
  let train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  if (opts.n !== undefined) train = firstExamples(train, opts.n, '--n');
  const test = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), 500);
  const inputShape = train.shape.slice(1);
  const model = buildDenoiser(inputShape, opts.filters, opts.seed);
  log(`parry train-denoiser on ${train.name} (${train.shape[0]} examples), backend ${backend}`);
  const r = await trainDenoiser(
    model,
    train,
    {
      noiseSigma: opts.noiseSigma,
      epochs: opts.epochs,
      batchSize: opts.batchSize,
      lr: opts.lr,
      filters: opts.filters,
      seed: opts.seed,
    },
    (e) => log(`epoch ${e.epoch}: loss ${e.loss.toFixed(5)}, ${e.seconds.toFixed(1)} s`),
  );
  await saveDenoiser(model, opts.out, {
    dataset: opts.dataset,
    noiseSigma: opts.noiseSigma,
    seed: opts.seed,
  });
  model.dispose();
  // Measured on the model as stored, read back from disk.
  const errors = await reconstructionErrors(
    opts.out,
    test.x.subarray(0, test.shape[0] * exampleSize(test)),
    test.shape,
    opts.noiseSigma,
    opts.seed + 1,
  );
  const summary = {
    command: 'train-denoiser',
    dataset: opts.dataset,
    train_examples: train.shape[0],
    test_examples: test.shape[0],
    noise_sigma: opts.noiseSigma,
    epochs: opts.epochs,
    batch_size: opts.batchSize,
    lr: opts.lr,
    filters: opts.filters,
    seed: opts.seed,
    backend,
    per_epoch: r.epochs.map((e) => ({ ...e, seconds: round(e.seconds, 2) })),
    test_mse_noisy: errors.noisy,
    test_mse_reconstructed: errors.reconstructed,
    out: opts.out,
  };
  emit(summary, opts, () =>
    [
      `trained the denoiser in ${round(
        r.epochs.reduce((s, e) => s + e.seconds, 0),
        2,
      )} s`,
      `test MSE: noisy ${errors.noisy.toFixed(5)}, reconstructed ${errors.reconstructed.toFixed(5)}`,
      `saved to ${opts.out}`,
    ].join('\n'),
  );
}
