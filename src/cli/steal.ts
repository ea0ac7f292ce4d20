/**
 * `parry steal`: model stealing (src/attacks/privacy/stealing). The victim is a model directory
 * (TF.js or ONNX) seen only through queries — its softmax probabilities, or with
 * `--victim-output labels` its top-1 labels as one-hot rows — and the attacker queries images of
 * a pool (`--pool`, `--pool-split`; by default the training split of `--dataset`, never the test
 * split the thief is scored on unless `--allow-test-pool`). The thief (a parry architecture) is
 * written to DIR with steal.json: accuracy, agreement with the victim and PGD transfer rate on
 * the test split. `--budget 250,500,1000` runs a curve; DIR then holds the last budget's thief.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { Command, InvalidArgumentError, Option } from 'commander';
import { decisionClassifierFrom, queryClassifierFrom } from '../attacks/evasion/black-box.js';
import {
  parseStealingOptions,
  runStealing,
  STEALING_ATTACKS,
  type StealingResult,
  stealingAttackNames,
} from '../attacks/privacy/stealing/index.js';
import { loadDataset, takeFirst } from '../data/index.js';
import { buildOutputDefenses, defendClassifier } from '../defenses/output/index.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { ParryError } from '../errors.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier, saveLayersModel } from '../models/index.js';
import {
  badOption,
  type CommonOptions,
  DATASET_HELP,
  emit,
  parseNonNegativeInt,
  parseNonNegativeNumber,
  parsePositiveInt,
  pct,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

interface StealOptions extends CommonOptions {
  victim: string;
  method: string;
  budget: number[];
  dataset: string;
  pool?: string;
  poolSplit: 'train' | 'test';
  allowTestPool?: boolean;
  victimOutput: 'scores' | 'labels';
  output?: string;
  n?: number;
  transferEps: number;
  transferSteps: number;
  out: string;
}

/** "250,500,1000" → [250, 500, 1000]; each a positive integer. */
export function parseBudgets(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  const bad = parts.find(
    (p) => !/^\d+$/.test(p) || !Number.isSafeInteger(Number(p)) || Number(p) < 1,
  );
  if (bad !== undefined) {
    throw new InvalidArgumentError(
      `must be a positive integer or a comma-separated list of them, got '${value}'`,
    );
  }
  return parts.map(Number);
}

export function stealCommand(): Command {
  const cmd = new Command('steal')
    .description('steal a model through its query interface; writes the thief and steal.json')
    .requiredOption('--victim <dir>', 'victim: TF.js model directory or ONNX file, queried only')
    .addOption(
      new Option(
        '--method <name>',
        STEALING_ATTACKS.map((a) => `${a.name}: ${a.description}`).join('; '),
      )
        .choices(stealingAttackNames())
        .makeOptionMandatory(),
    )
    .requiredOption(
      '--budget <n>',
      'victim queries (examples); a comma-separated list runs a curve',
      parseBudgets,
    )
    .option('--dataset <name>', `scoring: its test split. ${DATASET_HELP}`, 'fashion-mnist-subset')
    .option('--pool <name>', 'query pool data set (default: --dataset)')
    .addOption(
      new Option('--pool-split <split>', 'split of the pool')
        .choices(['train', 'test'])
        .default('train'),
    )
    .option('--allow-test-pool', 'let the pool be the test split the thief is scored on')
    .addOption(
      new Option(
        '--victim-output <kind>',
        "what a query returns: the victim's probabilities or its top-1 label",
      )
        .choices(['scores', 'labels'])
        .default('scores'),
    )
    .option(
      '--output <chain>',
      "an output defence chain in front of the victim's probabilities, e.g. 'reverse-sigmoid:beta=1,gamma=0.1', 'top-k:k=1', 'rounding:decimals=1', 'labels-only' (docs/privacy.md)",
    )
    .option('--n <n>', 'score on the first N test examples (default: all)', parsePositiveInt)
    .option(
      '--transfer-eps <e>',
      'PGD (L∞) radius for the transfer rate',
      parseNonNegativeNumber,
      0.1,
    )
    .option('--transfer-steps <k>', 'PGD iterations for the transfer rate', parseNonNegativeInt, 10)
    .requiredOption('--out <dir>', 'output folder (thief model, steal.json)');
  const keys = addEntryOptions(cmd, STEALING_ATTACKS, ['seed', 'budget']);
  return withCommonOptions(cmd).action(async (opts: StealOptions) => {
    checkOutputDir(opts.out, '--out');
    const given = givenEntryOptions(cmd, keys);
    await withFlagNames(opts.method, () => steal(opts, given), [...keys, 'budget']);
  });
}

async function steal(opts: StealOptions, given: Record<string, unknown>): Promise<void> {
  // Options first: a bad one is refused before any model or data is loaded.
  for (const budget of opts.budget)
    parseStealingOptions(opts.method, { ...given, budget, seed: opts.seed });
  if (opts.output !== undefined && opts.victimOutput === 'labels') {
    throw badOption(
      'steal: --output defends the probabilities; use it with --victim-output scores',
    );
  }
  const defenses = opts.output === undefined ? [] : buildOutputDefenses(opts.output);
  const poolName = opts.pool ?? opts.dataset;
  if (poolName === opts.dataset && opts.poolSplit === 'test' && !opts.allowTestPool) {
    throw badOption(
      `steal: the pool would be the test split of ${opts.dataset}, which scores the thief; choose another --pool or --pool-split, or pass --allow-test-pool`,
    );
  }
  await setUpBackend(opts);
  const model = await loadClassifier(opts.victim);
  try {
    let test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
    if (opts.n !== undefined) test = takeFirst(test, opts.n);
    const pool = loadDataset(poolName, opts.poolSplit, { seed: opts.seed });
    checkDataFits(model, test);
    // Only the shape: a non-problem-domain pool's labels mean nothing to the victim.
    const example = pool.shape.slice(1);
    if (example.join('x') !== model.inputShape.join('x')) {
      throw new ParryError(
        'BAD_INPUT',
        `steal: the pool ${poolName} has examples of shape [${example.join(', ')}], the victim takes [${model.inputShape.join(', ')}]`,
      );
    }
    const victim =
      opts.victimOutput === 'labels'
        ? decisionClassifierFrom(model)
        : defenses.length > 0
          ? defendClassifier(model, defenses)
          : queryClassifierFrom(model);
    const results: StealingResult[] = [];
    let thief: tfl.LayersModel | undefined;
    try {
      for (const budget of opts.budget) {
        const bar = progressBar(
          `${opts.method} |{bar}| {value}/{total} queries | ETA {eta_formatted}`,
        );
        bar.start(budget, 0);
        const run = await runStealing(
          opts.method,
          victim,
          { pool, test },
          { ...given, budget, seed: opts.seed },
          {
            onProgress: (used) => bar.update(used),
            transfer: { eps: opts.transferEps, steps: opts.transferSteps, seed: opts.seed },
          },
        ).finally(() => bar.stop());
        thief?.dispose();
        thief = run.model;
        results.push(run.result);
      }
      await write(opts, thief!, results, {
        pool: poolName,
        test: test.name,
        classNames: test.classNames,
        bounds: model.bounds,
      });
    } finally {
      thief?.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** The thief model and steal.json into `opts.out` at once; then the record on stdout. */
async function write(
  opts: StealOptions,
  thief: tfl.LayersModel,
  results: StealingResult[],
  data: { pool: string; test: string; classNames?: string[]; bounds: [number, number] },
): Promise<void> {
  const last = results[results.length - 1];
  const record = {
    command: 'steal',
    victim: opts.victim,
    method: opts.method,
    victim_output: opts.victimOutput,
    output_defense: opts.output ?? null,
    pool: data.pool,
    pool_split: opts.poolSplit,
    dataset: data.test,
    seed: opts.seed,
    transfer: { eps: opts.transferEps, steps: opts.transferSteps, norm: 'linf' },
    out: opts.out,
    thief_budget: last.budget,
    results: results.map(snake),
  };
  await writeFolder(
    opts.out,
    async (dir) => {
      await saveLayersModel(thief, dir, {
        metadata: {
          arch: last.options.arch as string,
          bounds: data.bounds,
          classNames: data.classNames,
          stolenFrom: opts.victim,
        },
      });
      writeFileSync(path.join(dir, 'steal.json'), `${JSON.stringify(record, null, 2)}\n`);
    },
    ['steal.json'],
  );
  emit(record, opts, () =>
    [
      ...results.map(
        (r) =>
          `${r.method} ${r.budget} queries (${r.queriesUsed} used, ${r.targets} labels): accuracy ${pct(r.accuracy)}, agreement ${pct(r.agreement)}, transfer ${pct(r.transferRate)} (victim ${pct(r.victimAccuracy)}), ${round(r.seconds, 1)} s`,
      ),
      `wrote the thief (budget ${last.budget}) and steal.json to ${opts.out}`,
    ].join('\n'),
  );
}

function snake(r: StealingResult) {
  return {
    method: r.method,
    budget: r.budget,
    queries_used: r.queriesUsed,
    accuracy: r.accuracy,
    agreement: r.agreement,
    transfer_rate: r.transferRate,
    victim_accuracy: r.victimAccuracy,
    test_examples: r.testExamples,
    transfer_size: r.transferSize,
    targets: r.targets,
    seconds: round(r.seconds, 3),
    score_seconds: round(r.scoreSeconds, 3),
    options: r.options,
    details: r.details,
  };
}
