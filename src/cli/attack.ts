/**
 * `parry attack`: runs one evasion attack on a model over a data set and reports clean and robust
 * accuracy, success rate, perturbation sizes and cost as one JSON object; optionally writes PNGs
 * of clean / adversarial / amplified perturbation for the first examples.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Command, Option } from 'commander';
import { NORMS, type Norm } from '../attacks/evasion/projection.js';
import { createUap, type UapResult } from '../attacks/evasion/uap.js';
import { ATTACKS, type AttackParams, attackNames, findAttack } from '../attacks/registry.js';
import { writeExamplePng } from '../data/image-encoding.js';
import { loadDataset, sliceDataset, takeFirst } from '../data/index.js';
import { WorkerPool } from '../engine/pool.js';
import {
  type AttackEvaluation,
  evaluateAttack,
  evaluateAttackPooled,
} from '../evaluate/robustness.js';
import { loadClassifier, type TfjsClassifier } from '../models/index.js';
import {
  badOption,
  type CommonOptions,
  DATASET_HELP,
  emit,
  parseNonNegativeInt,
  parseNonNegativeNumber,
  parsePositiveInt,
  parsePositiveNumber,
  progressBar,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';

interface AttackOptions extends CommonOptions {
  model: string;
  dataset: string;
  attack: string;
  norm: Norm;
  eps: number;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  randomStart?: boolean;
  targeted?: boolean;
  loss: 'ce' | 'margin';
  confidence?: number;
  maxQueries?: number;
  fitExamples: number;
  n: number;
  offset: number;
  batchSize: number;
  saveExamples?: string;
  examples: number;
}

export function attackCommand(): Command {
  const cmd = new Command('attack')
    .description('run an evasion attack and report clean vs robust accuracy')
    .requiredOption('--model <dir>', 'TF.js LayersModel or GraphModel directory')
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .addOption(
      new Option('--attack <name>', ATTACKS.map((a) => `${a.name}: ${a.description}`).join('; '))
        .choices(attackNames())
        .default('pgd'),
    )
    .addOption(new Option('--norm <norm>', 'threat model').choices([...NORMS]).default('linf'))
    .option('--eps <e>', 'perturbation budget in the chosen norm', parseNonNegativeNumber, 0.1)
    .option('--steps <k>', 'iterations (iterative attacks)', parsePositiveInt)
    .option('--step-size <a>', 'step length in the chosen norm', parsePositiveNumber)
    .option(
      '--restarts <r>',
      'random restarts; each example keeps its worst case',
      parsePositiveInt,
    )
    .option('--random-start', 'start from a random point in the ball')
    .option('--no-random-start', 'start from the clean input')
    .option('--targeted', 'aim at a random class other than the true one')
    .addOption(
      new Option('--loss <loss>', 'objective of gradient attacks: cross-entropy or logit margin')
        .choices(['ce', 'margin'])
        .default('ce'),
    )
    .option('--confidence <k>', 'margin required by C&W', parseNonNegativeNumber)
    .option('--max-queries <q>', 'query budget of black-box attacks', parsePositiveInt)
    .option('--n <n>', 'examples to attack (the first N of the test split)', parsePositiveInt, 1000)
    .option(
      '--offset <k>',
      'skip the first K test examples: attack test[K, K+N) (to split a long evaluation into runs)',
      parseNonNegativeInt,
      0,
    )
    .option('--batch-size <b>', 'examples per attack batch', parsePositiveInt, 128)
    .option(
      '--fit-examples <k>',
      'uap: training examples the universal perturbation is fitted on (the first K)',
      parsePositiveInt,
      1000,
    )
    .option('--save-examples <dir>', 'write PNGs of the first examples and their labels')
    .option('--examples <k>', 'how many examples --save-examples writes', parsePositiveInt, 8);
  return withCommonOptions(cmd).action((opts: AttackOptions) => runAttack(opts));
}

async function runAttack(opts: AttackOptions): Promise<void> {
  const backend = await setUpBackend(opts);
  const attack = findAttack(opts.attack)!;
  if (!attack.norms.includes(opts.norm)) {
    throw badOption(
      `--attack ${attack.name} supports --norm ${attack.norms.join('|')}, got ${opts.norm}`,
    );
  }
  const model = await loadClassifier(opts.model);
  const test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
  const size = test.shape[0];
  if (opts.offset >= size) {
    throw badOption(`--offset ${opts.offset} leaves no examples: ${test.name} has ${size}`);
  }
  const data = sliceDataset(test, opts.offset, opts.offset + opts.n);
  model.checkInput(data.shape);
  const params: AttackParams = {
    norm: opts.norm,
    eps: opts.eps,
    steps: opts.steps,
    stepSize: opts.stepSize,
    restarts: opts.restarts,
    randomStart: opts.randomStart,
    targeted: opts.targeted === true,
    loss: opts.loss,
    confidence: opts.confidence,
    maxQueries: opts.maxQueries,
    seed: opts.seed,
  };
  const fit = attack.name === 'uap' ? await fitUniversal(model, params, opts) : undefined;
  if (fit) params.universalPerturbation = fit.perturbation;
  const bar = progressBar(`${attack.name} |{bar}| {value}/{total} examples | ETA {eta_formatted}`);
  bar.start(data.shape[0], 0);
  const keep = opts.saveExamples ? Math.min(opts.examples, data.shape[0]) : 0;
  const evalOpts = {
    batchSize: opts.batchSize,
    keepExamples: keep,
    onProgress: (done: number) => bar.update(done),
  };
  // Batches go to one worker per core; a single batch (or --workers 1) runs in this thread.
  const batches = Math.ceil(data.shape[0] / opts.batchSize);
  const workers = Math.min(opts.workers ?? availableParallelism(), batches);
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const r = await (pool
    ? evaluateAttackPooled(pool, opts.model, model.numClasses, data, attack, params, evalOpts)
    : evaluateAttack(model, data, attack, params, evalOpts)
  ).finally(async () => {
    bar.stop();
    await pool?.close();
  });
  if (opts.saveExamples) await saveExamples(opts.saveExamples, r, model.bounds, data.classNames);
  model.dispose();
  const result = {
    command: 'attack',
    attack: attack.name,
    norm: opts.norm,
    eps: attack.minimumNorm ? null : opts.eps,
    targeted: params.targeted,
    loss: opts.loss,
    model: opts.model,
    dataset: data.name,
    offset: opts.offset,
    n: r.n,
    seed: opts.seed,
    backend,
    workers: Math.max(workers, 1),
    clean_accuracy: r.clean_accuracy,
    robust_accuracy: r.robust_accuracy,
    attack_success_rate: r.attack_success_rate,
    mean_perturbation: r.mean_perturbation,
    max_perturbation: r.max_perturbation,
    ...(attack.minimumNorm ? { median_perturbation: r.median_perturbation } : {}),
    ...brokenByCounts(r),
    ...(fit
      ? {
          fooling_rate: r.perExample.filter((e) => e.clean !== e.adversarial).length / r.n,
          fit_examples: fit.examples,
          fit_fooling_rate: fit.foolingRates[fit.foolingRates.length - 1] ?? 0,
          fit_epochs: fit.epochs,
          fit_gradient_evaluations: fit.gradientEvaluations,
          fit_seconds: round(fit.seconds, 3),
        }
      : {}),
    gradient_evaluations: r.gradient_evaluations,
    queries: r.queries,
    seconds: round(r.seconds, 3),
  };
  emit(result, opts, () =>
    [
      `${attack.name} (${opts.norm}${attack.minimumNorm ? '' : `, eps ${opts.eps}`}) on ${data.name}, ${r.n} examples`,
      `clean accuracy ${pct(r.clean_accuracy)}, robust accuracy ${pct(r.robust_accuracy)}, success rate ${pct(r.attack_success_rate)}`,
      `perturbation (${opts.norm}) of successful examples: mean ${round(r.mean_perturbation)}, max ${round(r.max_perturbation)}`,
      `${r.gradient_evaluations} gradient evaluations, ${r.queries} queries, ${round(r.seconds, 2)} s`,
    ].join('\n'),
  );
}

/** uap: fits one perturbation on the first --fit-examples training examples. */
async function fitUniversal(
  model: TfjsClassifier,
  params: AttackParams,
  opts: AttackOptions,
): Promise<UapResult & { examples: number; seconds: number }> {
  const started = performance.now();
  const train = takeFirst(
    loadDataset(opts.dataset, 'train', { seed: opts.seed }),
    opts.fitExamples,
  );
  model.checkInput(train.shape);
  const n = train.shape[0];
  const bar = progressBar('uap fit |{bar}| epoch {epoch} {value}/{total} examples');
  bar.start(n, 0, { epoch: 1 });
  const x = tf.tensor(train.x, train.shape);
  try {
    const fitUap = createUap({
      eps: params.eps,
      norm: params.norm,
      ...(params.steps !== undefined ? { deepfoolSteps: params.steps } : {}),
      seed: params.seed,
    });
    const r = await fitUap(model, x, { onProgress: (epoch, done) => bar.update(done, { epoch }) });
    return { ...r, examples: n, seconds: (performance.now() - started) / 1000 };
  } finally {
    bar.stop();
    x.dispose();
  }
}

/** Ensembles: how many examples each member broke (`robust`: none did; `clean`: misclassified). */
function brokenByCounts(r: AttackEvaluation): { broken_by?: Record<string, number> } {
  if (!r.perExample.some((e) => e.brokenBy !== undefined)) return {};
  const counts: Record<string, number> = {};
  for (const e of r.perExample) {
    const key = e.brokenBy ?? 'robust';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return { broken_by: counts };
}

function pct(v: number): string {
  return Number.isNaN(v) ? 'n/a' : `${(v * 100).toFixed(2)}%`;
}

async function saveExamples(
  dir: string,
  r: AttackEvaluation,
  bounds: readonly [number, number],
  classNames?: string[],
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const [k, ...shape] = r.examples.shape;
  const per = shape.reduce((a, b) => a * b, 1);
  const name = (c: number) => classNames?.[c] ?? String(c);
  const index = [];
  for (let i = 0; i < k; i++) {
    const file = `example-${String(i).padStart(3, '0')}.png`;
    const amplification = writeExamplePng(
      path.join(dir, file),
      r.examples.x.subarray(i * per, (i + 1) * per),
      r.examples.xAdv.subarray(i * per, (i + 1) * per),
      shape,
      bounds,
    );
    const e = r.perExample[i];
    index.push({
      file,
      panels: ['clean', 'adversarial', 'perturbation'],
      label: name(e.label),
      clean_prediction: name(e.clean),
      adversarial_prediction: name(e.adversarial),
      ...(e.target !== undefined ? { target: name(e.target) } : {}),
      perturbation_norm: e.norm,
      perturbation_amplification: round(amplification, 3),
    });
  }
  await writeFile(path.join(dir, 'examples.json'), `${JSON.stringify(index, null, 2)}\n`);
}
