/**
 * `parry scan`: model inspection against backdoors (src/defenses/poisoning/registry.ts, SCANS)
 * with clean data the defender holds (the first `--n` training examples of `--dataset`).
 * Neural Cleanse reports each class's reversed-trigger norm and anomaly index (`--unlearn`
 * fine-tunes the backdoor away); fine-pruning prunes and fine-tunes. `--out DIR` writes
 * `scan.json`, the reversed triggers as PNGs (mask, and mask⊙pattern), and the changed model
 * when there is one (a model directory `--model` accepts).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { imagePng } from '../data/image-encoding.js';
import { firstExamples, loadDataset } from '../data/index.js';
import { runScan, SCANS, scanNames } from '../defenses/poisoning/index.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier, saveLayersModel } from '../models/index.js';
import { parseEntryOptions } from '../options.js';
import {
  type CommonOptions,
  DATASET_HELP,
  emit,
  parsePositiveInt,
  pct,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions, withFlagNames } from './options.js';
import { progressBar } from './progress.js';

interface ScanOptions extends CommonOptions {
  model: string;
  dataset: string;
  n: number;
  method: string;
  out?: string;
}

export function scanCommand(): Command {
  const cmd = new Command('scan')
    .description(
      'look for a backdoor in a model (Neural Cleanse) or prune it away (fine-pruning), with clean data the defender holds',
    )
    .requiredOption('--model <dir>', 'model to scan (TF.js LayersModel)')
    .option('--dataset <name>', `clean data: ${DATASET_HELP}`, 'fashion-mnist-subset')
    .option(
      '--n <n>',
      'clean examples used: the first N of the training split',
      parsePositiveInt,
      1000,
    )
    .addOption(
      new Option('--method <name>', SCANS.map((e) => `${e.name}: ${e.description}`).join('; '))
        .choices(scanNames())
        .makeOptionMandatory(),
    )
    .option('--out <dir>', 'write scan.json, reversed triggers (PNG) and the changed model here');
  const keys = addEntryOptions(cmd, SCANS, ['seed']);
  return withCommonOptions(cmd).action(async (opts: ScanOptions) => {
    if (opts.out !== undefined) checkOutputDir(opts.out, '--out');
    await withFlagNames(opts.method, () => scan(opts, givenEntryOptions(cmd, keys)), keys);
  });
}

async function scan(opts: ScanOptions, given: Record<string, unknown>): Promise<void> {
  const entry = SCANS.find((e) => e.name === opts.method)!;
  const options = { ...given, seed: opts.seed };
  const parsed = parseEntryOptions(entry, options);
  const backend = await setUpBackend(opts);
  const clean = firstExamples(loadDataset(opts.dataset, 'train', { seed: opts.seed }), opts.n);
  const model = await loadClassifier(opts.model);
  const retrains = entry.name === 'fine-pruning' || parsed.unlearn === true;
  const workers = retrains ? chooseWorkers(opts.workers) : 1;
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const bar = progressBar(`${entry.name} |{bar}| {percentage}% | ETA {eta_formatted}`);
  try {
    model.checkInput(clean.shape);
    checkDataFits(model, clean);
    bar.start(100, 0);
    const r = await runScan(entry.name, model, clean, options, {
      pool,
      onProgress: (f) => bar.update(Math.round(100 * f)),
    });
    bar.stop();
    const nc = r.neuralCleanse;
    const fp = r.finePruning;
    const record = {
      command: 'scan',
      method: entry.name,
      model: opts.model,
      dataset: opts.dataset,
      clean_examples: clean.shape[0],
      options: parsed,
      seed: opts.seed,
      ...(nc
        ? {
            flagged_classes: nc.flagged,
            median_l1: nc.median,
            mad: nc.mad,
            per_class: nc.classes.map((c, k) => ({
              ...c,
              reached: nc.triggers[k].reached,
              rounds: nc.triggers[k].rounds,
            })),
          }
        : {}),
      ...(fp
        ? {
            layer: fp.layer,
            channels: fp.channels,
            pruned: fp.pruned.length,
            pruned_channels: fp.pruned,
            accuracy_before: fp.accuracyBefore,
            accuracy_pruned: fp.accuracyPruned,
            accuracy_after: fp.accuracyAfter,
          }
        : {}),
      model_changed: r.modelChanged,
      ...(opts.out === undefined ? {} : { out: opts.out }),
    };
    if (opts.out !== undefined) {
      const lm = model.layersModel!;
      const [h, w, ch] = model.inputShape;
      await writeFolder(opts.out, async (dir) => {
        if (r.modelChanged) {
          await saveLayersModel(lm, dir, {
            metadata: {
              bounds: model.bounds,
              mean: model.mean,
              std: model.std,
              classNames: model.classNames,
            },
          });
        }
        for (const t of nc?.triggers ?? []) {
          const [lo, hi] = model.bounds;
          const shown = Float32Array.from(
            t.pattern,
            (p, i) => lo + t.mask[Math.floor(i / ch)] * (p - lo),
          );
          writeFileSync(
            path.join(dir, `mask-${t.target}.png`),
            imagePng(t.mask, [h, w, 1], [0, 1]),
          );
          writeFileSync(
            path.join(dir, `trigger-${t.target}.png`),
            imagePng(shown, [h, w, ch], [lo, hi]),
          );
        }
        writeFileSync(path.join(dir, 'scan.json'), `${JSON.stringify(record, null, 2)}\n`);
      });
    }
    emit(record, opts, () => {
      const lines: string[] = [];
      if (nc) {
        lines.push(
          `neural-cleanse: ${nc.flagged.length === 0 ? 'no class flagged' : `flagged class ${nc.flagged.join(', ')}`} (median mask L1 ${round(nc.median, 2)}, MAD ${round(nc.mad, 2)})`,
        );
        for (const c of record.per_class ?? []) {
          lines.push(
            `  class ${c.class}: mask L1 ${round(c.l1, 2)}, anomaly index ${round(c.anomalyIndex, 2)}, attack success ${pct(c.attackSuccess)}${c.reached ? '' : ' (threshold not reached)'}${c.flagged ? '  FLAGGED' : ''}`,
          );
        }
      }
      if (fp) {
        lines.push(
          `fine-pruning: pruned ${fp.pruned.length} of ${fp.channels} channels of '${fp.layer}'; clean accuracy ${pct(fp.accuracyBefore)} → ${pct(fp.accuracyPruned)} pruned → ${pct(fp.accuracyAfter)} fine-tuned`,
        );
      }
      if (r.modelChanged) {
        lines.push(
          opts.out === undefined
            ? 'the changed model was not saved: give --out DIR'
            : `wrote the model to ${opts.out}`,
        );
      }
      return lines.join('\n');
    });
  } finally {
    bar.stop();
    model.dispose();
    await pool?.close();
  }
}
