/**
 * `parry certify`: certified robustness of a model on a data set. `--method smoothing` certifies
 * the Gaussian-smoothed classifier (Cohen et al. 2019) per example, and reports certified accuracy
 * as a curve over L2 radii. `--method ibp|crown --eps E` certifies the model itself on the L∞ ball
 * of radius E (clipped to the model's bounds) by bound propagation, and reports certified
 * accuracy at E (crown also reports IBP's, side by side).
 *
 * `forward_passes` counts network-sized passes: smoothing n0 + n per example; ibp 2 per example
 * (centre and radius); crown every specification row it back-substitutes (one pass each, an
 * upper estimate since a row for a hidden layer crosses only part of the network) plus its
 * interval passes, plus the 2 per example of the IBP run reported beside it.
 */

import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { ABSTAIN, certifyDataset, fraction } from '../certify/index.js';
import {
  certifySmoothingDataset,
  certifySmoothingDatasetPooled,
  type SmoothingRow,
} from '../certify/smoothing-dataset.js';
import { loadDataset, takeFirst } from '../data/index.js';
import { WorkerPool } from '../engine/pool.js';
import { predictDataset } from '../evaluate/predictions.js';
import { loadClassifier } from '../models/index.js';
import {
  badOption,
  type CommonOptions,
  DATASET_HELP,
  emit,
  parseNonNegativeNumber,
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
  method: 'smoothing' | 'ibp' | 'crown';
  sigma?: number;
  eps?: number;
  n0: number;
  n: number;
  alpha: number;
  nExamples: number;
  batchSize?: number;
  perExample?: boolean;
}

/** The certification methods, in the order `--help` lists them. */
const METHODS = ['smoothing', 'ibp', 'crown'] as const;

export function certifyCommand(): Command {
  const cmd = new Command('certify')
    .description(
      'certified robustness: randomized smoothing (certified L2 radius per example) or bound ' +
        'propagation, IBP or CROWN (certified at an L-inf eps)',
    )
    .requiredOption('--model <dir>', 'TF.js LayersModel or GraphModel directory')
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .addOption(
      new Option('--method <m>', 'certification method').choices(METHODS).default('smoothing'),
    )
    .option(
      '--sigma <s>',
      'smoothing: noise level (match the training noise); required',
      parsePositiveNumber,
    )
    .option('--eps <e>', 'ibp, crown: L-inf radius to certify; required', parseNonNegativeNumber)
    .option('--n0 <k>', 'samples to select the top class', parsePositiveInt, 100)
    .option('--n <k>', 'samples to bound its probability', parsePositiveInt, 10_000)
    .option('--alpha <a>', 'failure probability of each certificate', parsePositiveNumber, 0.001)
    .option('--n-examples <k>', 'test examples to certify (the first K)', parsePositiveInt, 100)
    .option(
      '--batch-size <b>',
      'noisy copies per forward pass (smoothing, default 1000) or examples per bound pass ' +
        '(ibp, crown, default 100)',
      parsePositiveInt,
    )
    .option('--per-example', 'include per-example predictions and radii (or margin bounds)');
  return withCommonOptions(cmd).action((opts: CertifyOptions) =>
    opts.method === 'smoothing' ? runSmoothing(opts) : runBounds(opts),
  );
}

async function runSmoothing(opts: CertifyOptions): Promise<void> {
  const sigma = opts.sigma;
  if (sigma === undefined) {
    throw badOption(
      'certify: --sigma is required for --method smoothing (or use --method ibp|crown with --eps)',
    );
  }
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  const data = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.nExamples);
  model.checkInput(data.shape);
  const started = performance.now();
  const clean = await predictDataset(model, data);
  const config = {
    sigma,
    n0: opts.n0,
    n: opts.n,
    alpha: opts.alpha,
    batchSize: opts.batchSize ?? 1000,
  };
  // Examples go to one worker per core; --workers 1 certifies in this thread.
  const workers = Math.min(opts.workers ?? availableParallelism(), data.shape[0]);
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const bar = progressBar('certify |{bar}| {value}/{total} examples | ETA {eta_formatted}');
  bar.start(data.shape[0], 0);
  const onProgress = (done: number) => bar.update(done);
  let rows: SmoothingRow[];
  let forwardPasses: number;
  try {
    ({ rows, forwardPasses } = pool
      ? await certifySmoothingDatasetPooled(pool, opts.model, data, config, opts.seed, {
          onProgress,
        })
      : await certifySmoothingDataset(model, data, config, opts.seed, { onProgress }));
  } finally {
    bar.stop();
    await pool?.close();
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
    workers: Math.max(workers, 1),
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

interface BoundsRow {
  label: number;
  prediction: number;
  certified: boolean;
  /** min over j ≠ label of the lower bound on logit_label − logit_j over the ball. */
  margin_lower: number;
}

/** `--method ibp|crown`: certified accuracy at one L∞ eps, in batches of examples. */
async function runBounds(opts: CertifyOptions): Promise<void> {
  const eps = opts.eps;
  if (eps === undefined) {
    throw badOption(`certify: --eps is required for --method ${opts.method} (the L-inf radius)`);
  }
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  const data = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.nExamples);
  model.checkInput(data.shape);
  const started = performance.now();
  const clean = await predictDataset(model, data);
  const bar = progressBar(`${opts.method} |{bar}| {value}/{total} examples | ETA {eta_formatted}`);
  bar.start(data.shape[0], 0);
  const r = await certifyDataset(model, data, {
    method: opts.method as 'ibp' | 'crown',
    eps,
    batchSize: opts.batchSize,
    onProgress: (done) => bar.update(done),
  }).finally(() => {
    bar.stop();
    model.dispose();
  });
  const rows: BoundsRow[] = r.certified.map((certified, i) => ({
    label: data.labels[i],
    prediction: clean.predictions[i],
    certified,
    margin_lower: r.minMargin[i],
  }));
  const k = rows.length;
  const certifiedAccuracy = fraction(r.certified);
  const result = {
    command: 'certify',
    method: opts.method,
    model: opts.model,
    dataset: data.name,
    n_examples: k,
    n: k,
    eps,
    seed: opts.seed,
    backend,
    clean_accuracy: clean.accuracy,
    certified_accuracy: certifiedAccuracy,
    ...(opts.method === 'crown' ? { ibp_certified_accuracy: fraction(r.ibpCertified) } : {}),
    forward_passes: r.passes,
    seconds: round((performance.now() - started) / 1000, 3),
    ...(opts.perExample ? { per_example: rows } : {}),
  };
  const pct = (v: number) => `${(v * 100).toFixed(2)}%`;
  emit(result, opts, () =>
    [
      `${opts.method.toUpperCase()} bounds, L-inf eps ${eps}, ${k} examples`,
      `clean accuracy ${pct(clean.accuracy)}`,
      `certified accuracy at eps ${eps}: ${pct(certifiedAccuracy)}` +
        (opts.method === 'crown' ? ` (IBP: ${pct(fraction(r.ibpCertified))})` : ''),
    ].join('\n'),
  );
}
