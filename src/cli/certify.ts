/**
 * `parry certify`: certified robustness of a model on a data set. `--method smoothing` certifies
 * the Gaussian-smoothed classifier (Cohen et al. 2019) per example and reports certified accuracy
 * as a curve over L2 radii; `--method ibp|crown --eps E` certifies the model itself on the L∞ ball
 * of radius E by bound propagation (crown also reports IBP's figure). The methods' options are
 * generated from the certificate registry (src/certify/registry.ts).
 *
 * With `--queue URL` (smoothing only) the examples' certificates run as jobs on `parry worker`
 * processes (docs/distributed.md), with the same result.
 *
 * `forward_passes` counts network-sized passes: smoothing n0 + n per example; ibp 2 per example
 * (centre and radius); crown every specification row it back-substitutes (an upper estimate)
 * plus its interval passes, plus the 2 per example of the IBP run reported beside it.
 */

import { type Command, Option } from 'commander';
import { CERTIFICATES, runCertificate } from '../certify/registry.js';
import { loadDataset, takeFirst } from '../data/index.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { withJobLabel } from '../engine/queue/label.js';
import { redactUrl } from '../engine/queue/redis.js';
import { predictDataset } from '../evaluate/predictions.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier } from '../models/index.js';
import { findEntry, parseEntryOptions } from '../options.js';
import {
  badOption,
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
import {
  addQueueOptions,
  checkQueueFlags,
  jobFailure,
  openQueue,
  type QueueFlags,
} from './queue-options.js';

interface CertifyOptions extends CommonOptions, QueueFlags {
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
  return addQueueOptions(withCommonOptions(cmd), "smoothing's certificates").action(
    (opts: CertifyOptions) => runCertify(opts, givenEntryOptions(cmd, keys)),
  );
}

async function runCertify(opts: CertifyOptions, given: Record<string, unknown>): Promise<void> {
  const entry = findEntry(CERTIFICATES, opts.method, 'certificate');
  if (opts.queue !== undefined && entry.name !== 'smoothing') {
    throw badOption(
      `certify: --queue runs --method smoothing only; ${entry.name} runs here, without --queue`,
    );
  }
  checkQueueFlags('certify', opts, opts.workers);
  const options = { ...given, seed: opts.seed };
  await withFlagNames(entry.name, async () => parseEntryOptions(entry, options)); // before any work
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  const data = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.nExamples);
  model.checkInput(data.shape);
  checkDataFits(model, data);
  const queue =
    opts.queue === undefined
      ? undefined
      : await openQueue('certify', opts.queue, opts.attempts, backend);
  const started = performance.now();
  const clean = await predictDataset(model, data);
  // Smoothing spreads examples over one worker per core (or the queue's workers); bound
  // propagation runs here.
  const workers =
    entry.name === 'smoothing' && !queue ? chooseWorkers(opts.workers, data.shape[0]) : 1;
  const pool = queue?.executor ?? (workers > 1 ? new WorkerPool({ workers, backend }) : undefined);
  // With a queue, its own bar counts the jobs.
  const bar = queue
    ? undefined
    : progressBar(`${entry.name} |{bar}| {value}/{total} examples | ETA {eta_formatted}`);
  bar?.start(data.shape[0], 0);
  const target = {
    model,
    modelDir: opts.model,
    data,
    pool,
    onProgress: (d: number) => bar?.update(d),
  };
  let r: Awaited<ReturnType<typeof runCertificate>>;
  try {
    // The queue's messages and bar name the jobs `smoothing sigma 0.25 · job 3/100`.
    const label = `${entry.name}${'sigma' in given ? ` sigma ${given.sigma}` : ''}`;
    r = await withJobLabel(label, () => runCertificate(entry, options, target));
  } catch (e) {
    await queue?.close(false);
    throw jobFailure('certify', e);
  } finally {
    bar?.stop();
    queue?.stopBar();
    if (!queue) await pool?.close();
    model.dispose();
  }
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
    ...(queue
      ? { queue: redactUrl(queue.executor.url) }
      : entry.name === 'smoothing'
        ? { workers: Math.max(workers, 1) }
        : {}),
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
  // Printed: the queue's copies of the results can go.
  await queue?.close(true);
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
