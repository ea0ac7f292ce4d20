/**
 * `parry defend`: puts a model behind a chain of preprocessors and reports what the defence costs
 * (clean accuracy before and after) and what it buys against an attack that ignores it versus one
 * adapted to it (BPDA through non-differentiable steps, EOT over randomised ones), side by side.
 */

import { Command, Option } from 'commander';
import { NORMS, type Norm } from '../attacks/evasion/projection.js';
import { ATTACKS, type AttackParams, findAttack } from '../attacks/registry.js';
import { loadDataset, takeFirst } from '../data/index.js';
import { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import {
  buildPreprocessors,
  checkPreprocessSpec,
  PREPROCESSORS,
} from '../defenses/preprocess/spec.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { defenseSetup, evaluateDefense, evaluateDefensePooled } from '../evaluate/defense.js';
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

interface DefendOptions extends CommonOptions {
  model: string;
  dataset: string;
  preprocess: string;
  attack: string;
  adaptive: 'bpda' | 'eot' | 'none';
  norm: Norm;
  eps: number;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  eotSamples: number;
  n: number;
  batchSize: number;
}

/** Attacks that follow gradients: the ones BPDA and EOT adapt. */
const GRADIENT_ATTACKS = ATTACKS.filter(
  (a) => !['square', 'hsj', 'uap'].includes(a.name) && !a.minimumNorm,
).map((a) => a.name);

export function defendCommand(): Command {
  const cmd = new Command('defend')
    .description(
      'evaluate a preprocessing defence: clean accuracy before/after, robust accuracy under a non-adaptive and an adaptive attack',
    )
    .requiredOption('--model <dir>', 'TF.js LayersModel or GraphModel directory')
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .requiredOption(
      '--preprocess <spec>',
      `steps name:key=value,... of ${PREPROCESSORS.map((p) => `${p.name} (${p.description})`).join('; ')}`,
    )
    .addOption(
      new Option('--attack <name>', 'gradient attack').choices(GRADIENT_ATTACKS).default('pgd'),
    )
    .addOption(
      new Option(
        '--adaptive <kind>',
        'bpda: straight-through surrogates; eot: BPDA plus averaging over --eot-samples draws; none: non-adaptive only',
      )
        .choices(['bpda', 'eot', 'none'])
        .default('bpda'),
    )
    .addOption(new Option('--norm <norm>', 'threat model').choices([...NORMS]).default('linf'))
    .option('--eps <e>', 'perturbation budget in the chosen norm', parseNonNegativeNumber, 0.1)
    .option('--steps <k>', 'attack iterations', parsePositiveInt)
    .option('--step-size <a>', 'step length in the chosen norm', parsePositiveNumber)
    .option('--restarts <r>', 'random restarts', parsePositiveInt)
    .option('--eot-samples <k>', 'eot: random draws averaged per gradient', parsePositiveInt, 8)
    .option('--n <n>', 'examples (the first N of the test split)', parsePositiveInt, 200)
    .option('--batch-size <b>', 'examples per attack batch', parsePositiveInt, 128);
  return withCommonOptions(cmd).action((opts: DefendOptions) => runDefend(opts));
}

async function runDefend(opts: DefendOptions): Promise<void> {
  const attack = findAttack(opts.attack)!;
  if (!attack.norms.includes(opts.norm)) {
    throw badOption(
      `--attack ${attack.name} supports --norm ${attack.norms.join('|')}, got ${opts.norm}`,
    );
  }
  const steps = checkPreprocessSpec(opts.preprocess);
  const backend = await setUpBackend(opts);
  const preprocessors = await buildPreprocessors(steps);
  const model = await loadClassifier(opts.model);
  const data = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.n);
  model.checkInput(data.shape);
  // Checks here that the model takes images; its flags decide the warnings below.
  const defended = new DefendedClassifier(model, preprocessors);
  const kind = { adaptive: opts.adaptive, eotSamples: opts.eotSamples };
  const params: AttackParams = {
    norm: opts.norm,
    eps: opts.eps,
    steps: opts.steps,
    stepSize: opts.stepSize,
    restarts: opts.restarts,
    targeted: false,
    seed: opts.seed,
  };
  const bar = progressBar(`defend |{bar}| {value}/{total} examples | ETA {eta_formatted}`);
  bar.start(data.shape[0], 0);
  const evalOpts = { batchSize: opts.batchSize, onProgress: (done: number) => bar.update(done) };
  // Batches go to one worker per core; a single batch (or --workers 1) runs in this thread.
  const batches = Math.ceil(data.shape[0] / opts.batchSize);
  const workers = chooseWorkers(opts.workers, batches);
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const target = { modelDir: opts.model, preprocess: opts.preprocess, ...kind };
  const r = await (pool
    ? evaluateDefensePooled(pool, target, data, attack, params, evalOpts)
    : evaluateDefense(
        (seed) => defenseSetup(model, preprocessors, kind, seed),
        data,
        attack,
        params,
        evalOpts,
      )
  ).finally(async () => {
    bar.stop();
    await pool?.close();
  });
  model.dispose();
  const adaptive = opts.adaptive === 'none' ? null : r.robust_accuracy[opts.adaptive];
  const nonAdaptive = r.robust_accuracy['non-adaptive'];
  const warnings: string[] = [];
  if (adaptive !== null && adaptive > nonAdaptive) {
    warnings.push(
      'the adaptive attack was weaker than the non-adaptive one: report the worst case',
    );
  }
  if (opts.adaptive === 'bpda' && defended.randomized) {
    warnings.push('the defence is randomised: --adaptive eot averages over its randomness');
  }
  if (opts.adaptive === 'none' && !defended.differentiable) {
    warnings.push(
      'non-differentiable steps mask gradients: the non-adaptive number overstates robustness',
    );
  }
  const result = {
    command: 'defend',
    model: opts.model,
    dataset: data.name,
    preprocess: opts.preprocess,
    steps: preprocessors.map((p) => ({
      name: p.name,
      params: p.params,
      differentiable: p.differentiable,
      randomized: p.randomized,
    })),
    attack: attack.name,
    adaptive: opts.adaptive,
    norm: opts.norm,
    eps: opts.eps,
    ...(opts.adaptive === 'eot' ? { eot_samples: opts.eotSamples } : {}),
    n: r.n,
    seed: opts.seed,
    backend,
    clean_accuracy_undefended: r.clean_accuracy_undefended,
    clean_accuracy_defended: r.clean_accuracy_defended,
    defense_cost: round(r.clean_accuracy_undefended - r.clean_accuracy_defended, 6),
    robust_accuracy_non_adaptive: nonAdaptive,
    robust_accuracy_adaptive: adaptive,
    robust_accuracy_worst_case: r.robust_accuracy_worst_case,
    gradient_evaluations: r.gradient_evaluations,
    warnings,
    seconds: round(r.seconds, 3),
  };
  const pct = (v: number | null) => (v === null ? 'n/a' : `${(v * 100).toFixed(2)}%`);
  emit(result, opts, () =>
    [
      `${opts.preprocess} on ${data.name}, ${r.n} examples`,
      `clean accuracy ${pct(r.clean_accuracy_undefended)} undefended, ${pct(r.clean_accuracy_defended)} defended`,
      `${attack.name} (${opts.norm}, eps ${opts.eps}): robust accuracy ${pct(nonAdaptive)} non-adaptive, ${pct(adaptive)} ${opts.adaptive}, worst case ${pct(r.robust_accuracy_worst_case)}`,
      ...warnings.map((w) => `warning: ${w}`),
      `${round(r.seconds, 2)} s`,
    ].join('\n'),
  );
}
