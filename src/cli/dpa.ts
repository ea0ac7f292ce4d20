/**
 * `parry dpa`: Deep Partition Aggregation (src/certify/partition-aggregation.ts), a certified defence against
 * poisoning. Trains k base classifiers on hash-partitioned training data (`--dataset`, possibly a
 * poisoned set written by `parry poison`), votes on the test split, and reports the accuracy,
 * the curve of certified accuracy over poison sizes and the median certified poison size.
 * `--out DIR` writes `dpa.json` (the certificate of every test example) and the k models.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { certifyDpa, dpaSchema, trainDpa } from '../certify/partition-aggregation.js';
import { firstExamples, loadDataset } from '../data/index.js';
import { checkOutputDir, writeFolder } from '../engine/output-path.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { saveLayersModel } from '../models/index.js';
import { parseEntryOptions } from '../options.js';
import {
  type CommonOptions,
  DATASET_HELP,
  emit,
  optionGiven,
  parsePositiveInt,
  pct,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { addEntryOptions, givenEntryOptions } from './options.js';
import { progressBar } from './progress.js';

interface DpaOptions extends CommonOptions {
  dataset: string;
  n?: number;
  out?: string;
}

const ENTRY = {
  name: 'dpa',
  description: 'deep partition aggregation',
  schema: dpaSchema,
  requires: [],
} as const;

export function dpaCommand(): Command {
  const cmd = new Command('dpa')
    .description(
      'Deep Partition Aggregation (Levine & Feizi 2021): k models on hash-partitioned training data, majority vote, certified poison size per test example',
    )
    .option('--dataset <name>', `training and test data: ${DATASET_HELP}`, 'fashion-mnist-subset')
    .option('--n <n>', 'test examples certified: the first N (default: all)', parsePositiveInt)
    .option('--out <dir>', 'write dpa.json and the k models (partition-I/) here');
  const keys = addEntryOptions(cmd, [ENTRY], ['seed']);
  return withCommonOptions(cmd).action(async (opts: DpaOptions) => {
    if (opts.out !== undefined) checkOutputDir(opts.out, '--out');
    const options = { ...givenEntryOptions(cmd, keys), seed: opts.seed };
    const config = parseEntryOptions(ENTRY, options);
    const backend = await setUpBackend(opts);
    const train = loadDataset(opts.dataset, 'train', { seed: opts.seed });
    const fullTest = loadDataset(opts.dataset, 'test', { seed: opts.seed });
    const test = optionGiven(cmd, 'n') ? firstExamples(fullTest, opts.n!) : fullTest;
    const workers = chooseWorkers(opts.workers);
    const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
    const bar = progressBar('dpa |{bar}| {value}/{total} base classifiers | ETA {eta_formatted}');
    bar.start(config.k, 0);
    let ensemble: Awaited<ReturnType<typeof trainDpa>>;
    try {
      ensemble = await trainDpa(train, config, { pool, onProgress: (d) => bar.update(d) });
    } finally {
      bar.stop();
      await pool?.close();
    }
    try {
      const r = certifyDpa(ensemble.models, test);
      const record = {
        command: 'dpa',
        dataset: opts.dataset,
        train_examples: train.shape[0],
        test_examples: test.shape[0],
        options: config,
        seed: opts.seed,
        partition_sizes: ensemble.sizes,
        accuracy: r.accuracy,
        median_certified: r.medianCertified,
        curve: r.curve,
      };
      if (opts.out !== undefined) {
        await writeFolder(opts.out, async (dir) => {
          for (const [i, m] of ensemble.models.entries()) {
            await saveLayersModel(m, path.join(dir, `partition-${i}`), {
              metadata: { arch: config.arch, seed: config.seed + i, bounds: [0, 1] },
            });
          }
          const perExample = r.predictions.map((p, i) => ({
            label: test.labels[i],
            prediction: p,
            votes: r.counts[i],
            certified: r.certified[i],
          }));
          writeFileSync(
            path.join(dir, 'dpa.json'),
            `${JSON.stringify({ ...record, per_example: perExample })}\n`,
          );
        });
      }
      emit(record, opts, () => {
        const at = (s: number) => r.curve.find((p) => p.size === s)?.accuracy ?? 0;
        const sizes = [0, 1, 2, 5, 10, 20].filter((s) => s < r.curve.length);
        return [
          `dpa: k = ${config.k} ${config.arch} models on ${train.shape[0]} training examples; accuracy ${pct(r.accuracy)} on ${test.shape[0]} test examples`,
          `median certified poison size: ${r.medianCertified} (the largest with certified accuracy >= 50%; -1 below)`,
          `certified accuracy: ${sizes.map((s) => `${s} poisons ${pct(at(s))}`).join(', ')}`,
        ].join('\n');
      });
    } finally {
      for (const m of ensemble.models) m.dispose();
    }
  });
}
