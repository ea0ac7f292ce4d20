/**
 * `parry poison`: writes a poisoned copy of a training set (any attack of the poisoning registry,
 * src/attacks/poisoning/registry.ts; its options are generated from the schemas) as MNIST-format
 * idx files that `--dataset mnist:DIR` reads everywhere, with the clean test split beside it and
 * the recipe in DIR/poison.json. `--apply-trigger DIR/poison.json` writes the test split
 * triggered instead (the examples not already of the target class, labelled with the attacker's
 * target), to measure the attack success rate with `parry predict` or `parry attack`.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import {
  findPoisonAttack,
  POISON_ATTACKS,
  poisonAttackNames,
  readManifest,
  runPoison,
  triggeredTestSet,
} from '../attacks/poisoning/index.js';
import { type Dataset, loadDataset, writeMnistFormat } from '../data/index.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { loadClassifier } from '../models/index.js';
import { parseEntryOptions } from '../options.js';
import {
  badOption,
  type CommonOptions,
  DATASET_HELP,
  emit,
  optionGiven,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

interface PoisonOptions extends CommonOptions {
  dataset: string;
  attack?: string;
  model?: string;
  applyTrigger?: string;
  out: string;
}

export function poisonCommand(): Command {
  const cmd = new Command('poison')
    .description(
      'write a poisoned copy of a training set (idx files for --dataset mnist:DIR) and its recipe, poison.json',
    )
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .addOption(
      new Option(
        '--attack <name>',
        POISON_ATTACKS.map((a) => `${a.name}: ${a.description}`).join('; '),
      ).choices(poisonAttackNames()),
    )
    .option('--model <dir>', 'reference model (attacks that need one: see their descriptions)')
    .option(
      '--apply-trigger <file>',
      "instead: write the test split triggered by poison.json's backdoor (the split of the data set the recipe was made from, unless --dataset is given)",
    )
    .requiredOption('--out <dir>', 'output folder (idx files, poison.json)');
  const keys = addEntryOptions(cmd, POISON_ATTACKS, ['seed']);
  return withCommonOptions(cmd).action(async (opts: PoisonOptions) => {
    checkOutputDir(opts.out, '--out');
    await setUpBackend(opts);
    if (opts.applyTrigger !== undefined) {
      // The test split of the data set the recipe was made from, unless --dataset says otherwise.
      const datasetGiven = optionGiven(cmd, 'dataset');
      return applyTriggerTo(opts, givenEntryOptions(cmd, keys), datasetGiven);
    }
    if (opts.attack === undefined) throw badOption('poison: --attack NAME is required');
    await withFlagNames(opts.attack, () => poison(opts, givenEntryOptions(cmd, keys)), keys);
  });
}

async function poison(opts: PoisonOptions, given: Record<string, unknown>): Promise<void> {
  const entry = findPoisonAttack(opts.attack!)!;
  // Options first: a bad one is refused before any data or model is loaded.
  parseEntryOptions(entry, { ...given, seed: opts.seed });
  const train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  const test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
  if (entry.needs.includes('model') && opts.model === undefined) {
    throw badOption(`poison: ${entry.name} needs a reference model: --model DIR`);
  }
  if (!entry.needs.includes('model') && opts.model !== undefined) {
    throw badOption(`poison: ${entry.name} takes no reference model; drop --model`);
  }
  const model = opts.model === undefined ? undefined : await loadClassifier(opts.model);
  // The bar starts with the crafting, after the attack has checked its options against the data.
  const bar = progressBar(`${entry.name} |{bar}| {percentage}% | ETA {eta_formatted}`);
  let barStarted = false;
  const progress = (fraction: number) => {
    if (!barStarted) bar.start(100, 0);
    barStarted = true;
    bar.update(Math.round(100 * fraction));
  };
  let result: Awaited<ReturnType<typeof runPoison>>;
  try {
    const targets = entry.needs.includes('test-set') ? test : undefined;
    result = await runPoison(
      entry.name,
      train,
      { ...given, seed: opts.seed },
      { model, test: targets, progress },
    );
  } finally {
    if (barStarted) bar.stop();
    model?.dispose();
  }
  const recipe = { ...result.manifest, source: opts.dataset, summary: result.summary ?? null };
  const written = await intoFolder(opts.out, (dir) => {
    writeMnistFormat(result.dataset, dir, 'train');
    writeMnistFormat(test, dir, 'test');
    writeFileSync(path.join(dir, 'poison.json'), `${JSON.stringify(recipe, null, 2)}\n`);
  });
  const manifestFile = path.join(opts.out, 'poison.json');
  const files = written.filter((f) => f !== manifestFile);
  const n = result.dataset.shape[0];
  const poisoned = result.poisonedIndices.length;
  const out = {
    command: 'poison',
    attack: entry.name,
    dataset: opts.dataset,
    out: opts.out,
    use_as: `mnist:${opts.out}`,
    examples: n,
    poisoned,
    poisoned_fraction: n === 0 ? 0 : poisoned / n,
    target_class: result.manifest.targetClass,
    labels_changed: result.manifest.labelsChanged,
    options: result.manifest.options,
    summary: result.summary ?? null,
    seed: opts.seed,
    files: [...files, manifestFile],
  };
  emit(out, opts, () =>
    [
      `${entry.name}: poisoned ${poisoned} of ${n} training examples (${((100 * poisoned) / Math.max(n, 1)).toFixed(2)}%)`,
      `wrote ${opts.out} (train as poisoned, test as given) and ${manifestFile}`,
      `train on it with --dataset mnist:${opts.out}`,
    ].join('\n'),
  );
}

async function applyTriggerTo(
  opts: PoisonOptions,
  given: Record<string, unknown>,
  datasetGiven: boolean,
) {
  if (opts.attack !== undefined || opts.model !== undefined || Object.keys(given).length > 0) {
    throw badOption(
      'poison: --apply-trigger reads everything from poison.json; drop --attack, --model and attack options',
    );
  }
  const file = opts.applyTrigger!;
  const { manifest, source } = readManifest(file);
  const dataset = datasetGiven || source === undefined ? opts.dataset : source;
  const test: Dataset = loadDataset(dataset, 'test', { seed: opts.seed });
  const triggered = triggeredTestSet(test, manifest);
  const files = await intoFolder(opts.out, (dir) => {
    writeMnistFormat(triggered, dir, 'test');
  });
  const out = {
    command: 'poison',
    apply_trigger: file,
    attack: manifest.attack,
    dataset,
    out: opts.out,
    use_as: `mnist:${opts.out}`,
    examples: triggered.shape[0],
    target_class: manifest.targetClass,
    seed: opts.seed,
    files,
  };
  emit(out, opts, () =>
    [
      `triggered ${triggered.shape[0]} test examples with ${manifest.attack}'s trigger`,
      `wrote ${opts.out}: attack success rate = accuracy on --dataset mnist:${opts.out}`,
    ].join('\n'),
  );
}

/** Writes files with `write` into `out` all at once (writeFolder); returns their final paths. */
async function intoFolder(out: string, write: (dir: string) => void): Promise<string[]> {
  let names: string[] = [];
  await writeFolder(
    out,
    async (dir) => {
      write(dir);
      names = readdirSync(dir).sort();
    },
    ['poison.json'],
  );
  return names.map((n) => path.join(out, n));
}
