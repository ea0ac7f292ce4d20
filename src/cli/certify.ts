/**
 * `parry certify`: certified robustness of a model on a data set. `--method smoothing` certifies
 * the Gaussian-smoothed classifier (Cohen et al. 2019) per example, and reports certified accuracy
 * as a curve over L2 radii.
 */

import * as tf from '@tensorflow/tfjs-core';
import { Command, Option } from 'commander';
import { ABSTAIN, certify } from '../certify/index.js';
import { exampleSize, loadDataset, takeFirst } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import { predictDataset } from '../evaluate/predict.js';
import { loadClassifier } from '../models/index.js';
import {
  type CommonOptions,
  DATASET_HELP,
  emit,
  parsePositiveInt,
  parsePositiveNumber,
  progressBar,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';

const RADII = [0, 0.25, 0.5, 0.75, 1.0];

interface CertifyOptions extends CommonOptions {
  model: string;
  dataset: string;
  method: 'smoothing';
  sigma: number;
  n0: number;
  n: number;
  alpha: number;
  nExamples: number;
  batchSize: number;
  perExample?: boolean;
}

export function certifyCommand(): Command {
  const cmd = new Command('certify')
    .description('certified robustness: randomized smoothing (certified L2 radius per example)')
    .requiredOption('--model <dir>', 'TF.js LayersModel or GraphModel directory')
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .addOption(
      new Option('--method <m>', 'certification method')
        .choices(['smoothing'])
        .default('smoothing'),
    )
    .requiredOption(
      '--sigma <s>',
      'smoothing noise level (match the training noise)',
      parsePositiveNumber,
    )
    .option('--n0 <k>', 'samples to select the top class', parsePositiveInt, 100)
    .option('--n <k>', 'samples to bound its probability', parsePositiveInt, 10_000)
    .option('--alpha <a>', 'failure probability of each certificate', parsePositiveNumber, 0.001)
    .option('--n-examples <k>', 'test examples to certify (the first K)', parsePositiveInt, 100)
    .option('--batch-size <b>', 'noisy copies per forward pass', parsePositiveInt, 1000)
    .option('--per-example', 'include per-example predictions and radii');
  return withCommonOptions(cmd).action((opts: CertifyOptions) => runCertify(opts));
}

async function runCertify(opts: CertifyOptions): Promise<void> {
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  const data = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.nExamples);
  model.checkInput(data.shape);
  const started = performance.now();
  const clean = await predictDataset(model, data);
  const rng = new Rng(opts.seed);
  const per = exampleSize(data);
  const rows: { label: number; prediction: number; radius: number; pALower: number }[] = [];
  let forwardPasses = 0;
  const bar = progressBar('certify |{bar}| {value}/{total} examples | ETA {eta_formatted}');
  bar.start(data.shape[0], 0);
  try {
    for (let i = 0; i < data.shape[0]; i++) {
      const x = tf.tensor(data.x.subarray(i * per, (i + 1) * per), data.shape.slice(1));
      try {
        const config = {
          sigma: opts.sigma,
          n0: opts.n0,
          n: opts.n,
          alpha: opts.alpha,
          batchSize: opts.batchSize,
        };
        const r = await certify(model, x, config, rng.fork());
        rows.push({
          label: data.labels[i],
          prediction: r.prediction,
          radius: r.radius,
          pALower: r.pALower,
        });
        forwardPasses += r.forwardPasses;
      } finally {
        x.dispose();
      }
      bar.update(i + 1);
    }
  } finally {
    bar.stop();
    model.dispose();
  }
  const k = rows.length;
  const certified = RADII.map((radius) => ({
    radius,
    accuracy: rows.filter((e) => e.prediction === e.label && e.radius >= radius).length / k,
  }));
  const result = {
    command: 'certify',
    method: opts.method,
    model: opts.model,
    dataset: data.name,
    n_examples: k,
    sigma: opts.sigma,
    n0: opts.n0,
    n: opts.n,
    alpha: opts.alpha,
    seed: opts.seed,
    backend,
    clean_accuracy: clean.accuracy,
    certified_accuracy: certified,
    abstain_rate: rows.filter((e) => e.prediction === ABSTAIN).length / k,
    forward_passes: forwardPasses,
    seconds: round((performance.now() - started) / 1000, 3),
    ...(opts.perExample ? { per_example: rows } : {}),
  };
  emit(result, opts, () =>
    [
      `randomized smoothing, sigma ${opts.sigma}, n ${opts.n}, alpha ${opts.alpha}, ${k} examples`,
      `clean accuracy of the base model ${(clean.accuracy * 100).toFixed(2)}%, abstained ${(result.abstain_rate * 100).toFixed(1)}%`,
      ...certified.map(
        (c) => `certified accuracy at L2 radius ${c.radius}: ${(c.accuracy * 100).toFixed(2)}%`,
      ),
    ].join('\n'),
  );
}
