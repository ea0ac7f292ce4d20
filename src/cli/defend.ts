/**
 * `parry defend`: a model behind a chain of preprocessors: what the defense costs (clean accuracy
 * before and after) and what it buys against an attack that ignores it versus one adapted to it
 * (BPDA through non-differentiable steps, EOT over randomised ones), with honesty flags.
 */

import { type Command, Option } from 'commander';
import { ATTACKS, type AttackParams, attackOptions, findAttack } from '../attacks/registry.js';
import { firstExamples, loadDataset, takeFirst } from '../data/index.js';
import { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import {
  buildPreprocessors,
  checkPreprocessSpec,
  PREPROCESSORS,
} from '../defenses/preprocess/spec.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import {
  defenseFlags,
  defenseSetup,
  defenseSummary,
  evaluateDefense,
  evaluateDefensePooled,
} from '../evaluate/defense.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier } from '../models/index.js';
import { NORMS, type Norm } from '../objectives/threat-model.js';
import {
  type CommonOptions,
  emit,
  modelCommand,
  optionGiven,
  parsePositiveInt,
  pct,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

interface DefendOptions extends CommonOptions {
  model: string;
  dataset: string;
  preprocess: string;
  attack: string;
  adaptive: 'bpda' | 'eot' | 'none';
  norm: Norm;
  eotSamples: number;
  n: number;
  /** Whether --n was given (else its default is cut to the data set). */
  nGiven?: boolean;
  batchSize: number;
}

/** Attacks that follow gradients within a budget, on test inputs alone: the ones BPDA and EOT adapt. */
const GRADIENT_ATTACKS = ATTACKS.filter(
  (a) =>
    a.requires.includes('gradients') && !a.requires.includes('training-data') && !a.minimumNorm,
).map((a) => a.name);

export function defendCommand(): Command {
  const cmd = modelCommand(
    'defend',
    'evaluate a preprocessing defense: clean accuracy before/after, robust accuracy under a non-adaptive and an adaptive attack',
  )
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
    .option('--eot-samples <k>', 'eot: random draws averaged per gradient', parsePositiveInt, 8)
    .option('--n <n>', 'examples (the first N of the test split)', parsePositiveInt, 200)
    .option('--batch-size <b>', 'examples per attack batch', parsePositiveInt, 128);
  // The attack's own options (eps, steps, step size, ...), generated from the registry.
  const entries = ATTACKS.filter((a) => GRADIENT_ATTACKS.includes(a.name));
  const keys = addEntryOptions(cmd, entries, ['norm', 'targeted', 'seed']);
  return withCommonOptions(cmd).action((opts: DefendOptions) =>
    runDefend({ ...opts, nGiven: optionGiven(cmd, 'n') }, givenEntryOptions(cmd, keys)),
  );
}

async function runDefend(opts: DefendOptions, given: Record<string, unknown>): Promise<void> {
  const attack = findAttack(opts.attack)!;
  const spec = checkPreprocessSpec(opts.preprocess);
  const backend = await setUpBackend(opts);
  const preprocessors = await buildPreprocessors(spec);
  const model = await loadClassifier(opts.model);
  const test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
  const data = opts.nGiven ? firstExamples(test, opts.n, '--n') : takeFirst(test, opts.n);
  model.checkInput(data.shape);
  checkDataFits(model, data);
  // Checks here that the model takes images; its flags decide the warnings below.
  const defended = new DefendedClassifier(model, preprocessors);
  const kind = { adaptive: opts.adaptive, eotSamples: opts.eotSamples };
  const eps = (given.eps as number | undefined) ?? 0.1;
  const params: AttackParams = { ...given, norm: opts.norm, eps, targeted: false, seed: opts.seed };
  await withFlagNames(attack.name, async () => attackOptions(attack, params)); // before any work
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
  const summary = defenseSummary(r, opts.adaptive);
  const flags = defenseFlags(r, opts.adaptive, defended);
  const warnings = flags.map((f) => f.message);
  const steps = preprocessors.map(({ name, params, differentiable, randomized }) => ({
    name,
    params,
    differentiable,
    randomized,
  }));
  const eot = opts.adaptive === 'eot' ? { eot_samples: opts.eotSamples } : {};
  const result = {
    ...{ command: 'defend', model: opts.model, dataset: data.name, preprocess: opts.preprocess },
    ...{ steps, attack: attack.name, adaptive: opts.adaptive, norm: opts.norm, eps, ...eot },
    ...{ n: r.n, seed: opts.seed, backend, ...summary, flags: flags.map((f) => f.id), warnings },
    seconds: round(r.seconds, 3),
  };
  const { robust_accuracy_non_adaptive: nonAdaptive, robust_accuracy_adaptive: adaptive } = summary;
  emit(result, opts, () =>
    [
      `${opts.preprocess} on ${data.name}, ${r.n} examples`,
      `clean accuracy ${pct(r.cleanAccuracyUndefended)} undefended, ${pct(r.cleanAccuracyDefended)} defended`,
      `${attack.name} (${opts.norm}, eps ${eps}): robust accuracy ${pct(nonAdaptive)} non-adaptive, ${pct(adaptive)} ${opts.adaptive}, worst case ${pct(r.robustAccuracyWorstCase)}`,
      ...warnings.map((w) => `warning: ${w}`),
      `${round(r.seconds, 2)} s`,
    ].join('\n'),
  );
}
