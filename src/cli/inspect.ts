/**
 * `parry inspect`: data inspection against poisoning (src/defenses/poisoning/registry.ts): a
 * model trained on a training set, the set itself, and a method — activation clustering,
 * spectral signatures, deep k-NN or loss filtering — give the flagged examples; with the
 * poisoning recipe (`--poison-manifest poison.json`) they are scored against the truly poisoned
 * ones (precision, recall, false-positive rate, ROC AUC). `--out DIR` writes the training set
 * without the flagged examples (and the test split as given) for `parry train --dataset
 * mnist:DIR`, the renumbered recipe beside it when one was given, and `inspection.json`.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import {
  checkManifestMatches,
  manifestAfterRemoval,
  type PoisonManifest,
  readManifest,
} from '../attacks/poisoning/index.js';
import { loadDataset, selectExamples, writeMnistFormat } from '../data/index.js';
import {
  INSPECTIONS,
  inspectionNames,
  runInspection,
  scoreInspection,
} from '../defenses/poisoning/index.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier } from '../models/index.js';
import { parseEntryOptions } from '../options.js';
import {
  type CommonOptions,
  DATASET_HELP,
  emit,
  pct,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

interface InspectOptions extends CommonOptions {
  model: string;
  dataset: string;
  method: string;
  poisonManifest?: string;
  out?: string;
  listFlagged: boolean;
}

export function inspectCommand(): Command {
  const cmd = new Command('inspect')
    .description(
      'find poisoned examples in a training set with a model trained on it; score them against a poisoning recipe; write the set without them',
    )
    .requiredOption('--model <dir>', 'model trained on the data set (TF.js LayersModel)')
    .option('--dataset <name>', `training set inspected: ${DATASET_HELP}`, 'fashion-mnist-subset')
    .addOption(
      new Option(
        '--method <name>',
        INSPECTIONS.map((e) => `${e.name}: ${e.description}`).join('; '),
      )
        .choices(inspectionNames())
        .makeOptionMandatory(),
    )
    .option(
      '--poison-manifest <file>',
      'poison.json of the set: score the flags against its poisoned indices',
    )
    .option('--out <dir>', 'write the training set without the flagged examples here')
    .option('--list-flagged', 'print every flagged index (always in --json)', false);
  const keys = addEntryOptions(cmd, INSPECTIONS, ['seed']);
  return withCommonOptions(cmd).action(async (opts: InspectOptions) => {
    if (opts.out !== undefined) checkOutputDir(opts.out, '--out');
    await withFlagNames(opts.method, () => inspect(opts, givenEntryOptions(cmd, keys)), keys);
  });
}

async function inspect(opts: InspectOptions, given: Record<string, unknown>): Promise<void> {
  const entry = INSPECTIONS.find((e) => e.name === opts.method)!;
  const readsSeed = 'seed' in entry.schema.shape;
  const options = readsSeed ? { ...given, seed: opts.seed } : given;
  // Options and the recipe first: refused before any data or model is loaded.
  const parsed = parseEntryOptions(entry, options);
  const manifest: PoisonManifest | undefined =
    opts.poisonManifest === undefined ? undefined : readManifest(opts.poisonManifest).manifest;
  const backend = await setUpBackend(opts);
  const train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  if (manifest) checkManifestMatches(train, manifest, { training: true });
  const model = await loadClassifier(opts.model);
  // Loss filtering and activation clustering (reclassify retrain) train a model: over the pool.
  const retrains =
    entry.name === 'loss' || (entry.name === 'ac' && parsed.reclassify === 'retrain');
  const workers = retrains ? chooseWorkers(opts.workers) : 1;
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const bar = progressBar(`${entry.name} |{bar}| {percentage}% | ETA {eta_formatted}`);
  let result: Awaited<ReturnType<typeof runInspection>>;
  try {
    model.checkInput(train.shape);
    checkDataFits(model, train);
    bar.start(100, 0);
    result = await runInspection(entry.name, model, train, options, {
      pool,
      onProgress: (f) => bar.update(Math.round(100 * f)),
    });
  } finally {
    bar.stop();
    model.dispose();
    await pool?.close();
  }
  const n = train.shape[0];
  const score = manifest ? scoreInspection(result, manifest.poisonedIndices) : undefined;
  let files: string[] = [];
  if (opts.out !== undefined) {
    const flagged = new Set(result.flagged);
    const keep = Array.from({ length: n }, (_, i) => i).filter((i) => !flagged.has(i));
    const clean = selectExamples(train, keep, `${train.name} without ${entry.name} flags`);
    const test = loadDataset(opts.dataset, 'test', { seed: opts.seed });
    await writeFolder(opts.out, async (dir) => {
      writeMnistFormat(clean, dir, 'train');
      writeMnistFormat(test, dir, 'test');
      const record = {
        command: 'inspect',
        method: entry.name,
        options: parsed,
        model: opts.model,
        dataset: opts.dataset,
        removed: result.flagged,
      };
      writeFileSync(path.join(dir, 'inspection.json'), `${JSON.stringify(record)}\n`);
      if (manifest) {
        const after = {
          ...manifestAfterRemoval(manifest, result.flagged),
          source: `mnist:${opts.out}`,
        };
        writeFileSync(path.join(dir, 'poison.json'), `${JSON.stringify(after, null, 2)}\n`);
      }
    });
    files = [path.join(opts.out, 'inspection.json')];
    if (manifest) files.push(path.join(opts.out, 'poison.json'));
  }
  const out = {
    command: 'inspect',
    method: entry.name,
    model: opts.model,
    dataset: opts.dataset,
    examples: n,
    flagged: result.flagged.length,
    flagged_fraction: n === 0 ? 0 : result.flagged.length / n,
    ...(score
      ? {
          poisoned: manifest!.poisonedIndices.length,
          precision: score.precision,
          recall: score.recall,
          false_positive_rate: score.falsePositiveRate,
          auc: score.auc,
        }
      : {}),
    per_class: result.perClass,
    options: parsed,
    seed: opts.seed,
    flagged_indices: result.flagged,
    ...(opts.out === undefined ? {} : { out: opts.out, use_as: `mnist:${opts.out}`, files }),
  };
  emit(out, opts, () => {
    const lines = [
      `${entry.name}: flagged ${result.flagged.length} of ${n} training examples (${pct(out.flagged_fraction)})`,
    ];
    if (score) {
      lines.push(
        `against ${opts.poisonManifest} (${manifest!.poisonedIndices.length} poisoned): precision ${pct(score.precision)}, recall ${pct(score.recall)}, false-positive rate ${pct(score.falsePositiveRate)}, ROC AUC ${round(score.auc, 4)}`,
      );
    }
    for (const c of result.perClass) {
      lines.push(
        `  ${Object.entries(c)
          .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : round(v, 3)}`)
          .join(', ')}`,
      );
    }
    if (opts.listFlagged) lines.push(`flagged: ${result.flagged.join(' ')}`);
    if (opts.out !== undefined) {
      lines.push(`wrote ${opts.out} (train without the flagged examples, test as given)`);
      lines.push(`retrain with --dataset mnist:${opts.out}`);
    }
    return lines.join('\n');
  });
}
