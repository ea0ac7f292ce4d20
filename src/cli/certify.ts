/**
 * `parry certify`: certified robustness of a model on a data set. `--method smoothing` certifies
 * the Gaussian-smoothed classifier (Cohen et al. 2019) per example and reports certified accuracy
 * as a curve over L2 radii; `--method ibp|crown --eps E` certifies the model itself on the L∞ ball
 * of radius E by bound propagation (crown also reports IBP's figure). The methods' options are
 * generated from the certificate registry (src/certify/registry.ts).
 *
 * `forward_passes` counts network-sized passes: smoothing n0 + n per example; ibp 2 per example
 * (centre and radius); crown every specification row it back-substitutes (an upper estimate)
 * plus its interval passes, plus the 2 per example of the IBP run reported beside it.
 */

import { type Command, Option } from 'commander';
import { CERTIFICATES, runCertificate } from '../certify/registry.js';
import { loadDataset, takeFirst } from '../data/index.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { predictDataset } from '../evaluate/predictions.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier } from '../models/index.js';
import { findEntry, parseEntryOptions } from '../options.js';
import {
  type CommonOptions,
  emit,
  modelCommand,
  parsePositiveInt,
  pct,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

interface CertifyOptions extends CommonOptions {
  model: string;
  dataset: string;
  method: string;
  nExamples: number;
  perExample?: boolean;
}

export function certifyCommand(): Command {
  const cmd = modelCommand(
    'certify',
    'certified robustness: randomized smoothing (certified L2 radius per example) or bound ' +
      'propagation, IBP or CROWN (certified at an L-inf eps)',
  )
    .addOption(
      new Option('--method <m>', CERTIFICATES.map((c) => `${c.name}: ${c.description}`).join('; '))
        .choices(CERTIFICATES.map((c) => c.name))
        .default('smoothing'),
    )
    .option('--n-examples <k>', 'test examples to certify (the first K)', parsePositiveInt, 100)
    .option('--per-example', 'include per-example predictions and radii (or margin bounds)');
  const keys = addEntryOptions(cmd, CERTIFICATES, ['norm', 'targeted', 'seed']);
  return withCommonOptions(cmd).action((opts: CertifyOptions) =>
    runCertify(opts, givenEntryOptions(cmd, keys)),
  );
}

async function runCertify(opts: CertifyOptions, given: Record<string, unknown>): Promise<void> {
  const entry = findEntry(CERTIFICATES, opts.method, 'certificate');
  const options = { ...given, seed: opts.seed };
  await withFlagNames(entry.name, async () => parseEntryOptions(entry, options)); // before any work
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  const data = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.nExamples);
  model.checkInput(data.shape);
  checkDataFits(model, data);
  const started = performance.now();
  const clean = await predictDataset(model, data);
  // Smoothing spreads examples over one worker per core; bound propagation runs here.
  const workers = entry.name === 'smoothing' ? chooseWorkers(opts.workers, data.shape[0]) : 1;
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const bar = progressBar(`${entry.name} |{bar}| {value}/{total} examples | ETA {eta_formatted}`);
  bar.start(data.shape[0], 0);
  const target = {
    model,
    modelDir: opts.model,
    data,
    pool,
    onProgress: (d: number) => bar.update(d),
  };
  const r = await runCertificate(entry, options, target).finally(async () => {
    bar.stop();
    await pool?.close();
    model.dispose();
  });
  const k = data.shape[0];
  const perExample = r.perExample.map((e, i) => ({ ...e, prediction: clean.predictions[i] }));
  const result = {
    command: 'certify',
    method: entry.name,
    model: opts.model,
    dataset: data.name,
    n_examples: k,
    ...given,
    ...(entry.name === 'smoothing' ? {} : { n: k }),
    seed: opts.seed,
    backend,
    ...(entry.name === 'smoothing' ? { workers: Math.max(workers, 1) } : {}),
    clean_accuracy: clean.accuracy,
    ...r.summary,
    forward_passes: r.forwardPasses,
    seconds: round((performance.now() - started) / 1000, 3),
    ...(opts.perExample
      ? { per_example: entry.name === 'smoothing' ? r.perExample : perExample }
      : {}),
  };
  emit(result, opts, () =>
    [
      `${entry.name} on ${data.name}, ${k} examples, clean accuracy ${pct(clean.accuracy)}`,
      ...summaryLines(r.summary),
    ].join('\n'),
  );
}

/** The certified accuracies, one line each. */
function summaryLines(summary: Record<string, unknown>): string[] {
  const acc = summary.certified_accuracy;
  if (typeof acc === 'number') {
    const ibp = summary.ibp_certified_accuracy;
    return [
      `certified accuracy ${pct(acc)}${typeof ibp === 'number' ? ` (IBP: ${pct(ibp)})` : ''}`,
    ];
  }
  return [
    `abstained ${pct(summary.abstain_rate as number, 1)}`,
    ...(acc as { radius: number; accuracy: number }[]).map(
      (c) => `certified accuracy at L2 radius ${c.radius}: ${pct(c.accuracy)}`,
    ),
  ];
}
