/** `parry predict --model DIR --dataset NAME --n N`: accuracy and predictions on a data set. */

import { type Command, Option } from 'commander';
import { firstExamples, loadDataset } from '../data/index.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { type Predictions, predictDataset, predictDatasetPooled } from '../evaluate/predictions.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier } from '../models/index.js';
import {
  type CommonOptions,
  emit,
  modelCommand,
  parsePositiveInt,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';
import { progressBar } from './progress.js';

interface PredictOptions extends CommonOptions {
  model: string;
  dataset: string;
  split: 'train' | 'test';
  n?: number;
  batchSize: number;
}

export function predictCommand(): Command {
  const cmd = modelCommand(
    'predict',
    'predict a data set with a model: accuracy and per-example predictions',
  )
    .addOption(
      new Option('--split <split>', 'which split').choices(['train', 'test']).default('test'),
    )
    .option('--n <n>', 'only the first N examples', parsePositiveInt)
    .option('--batch-size <n>', 'examples per forward pass', parsePositiveInt, 256);
  return withCommonOptions(cmd).action((opts: PredictOptions) => runPredict(opts));
}

async function runPredict(opts: PredictOptions): Promise<void> {
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  let data = loadDataset(opts.dataset, opts.split, { seed: opts.seed });
  if (opts.n !== undefined) data = firstExamples(data, opts.n, '--n');
  model.checkInput(data.shape);
  checkDataFits(model, data);
  const started = performance.now();
  const bar = progressBar('predict |{bar}| {value}/{total} examples | ETA {eta_formatted}');
  bar.start(data.shape[0], 0);
  // Small jobs run in-process; larger ones (or an explicit --workers) use one worker per core.
  const workers = data.shape[0] >= 4096 ? chooseWorkers(opts.workers) : (opts.workers ?? 1);
  const progress = (done: number) => bar.update(done);
  let predicted: Predictions;
  if (workers > 1) {
    model.dispose();
    const pool = new WorkerPool({ workers, backend });
    try {
      predicted = await predictDatasetPooled(pool, opts.model, data, opts.batchSize, progress);
    } finally {
      await pool.close();
    }
  } else {
    predicted = await predictDataset(model, data, opts.batchSize, progress);
    model.dispose();
  }
  const { predictions, confidence, accuracy } = predicted;
  bar.stop();
  const seconds = (performance.now() - started) / 1000;
  const result = {
    command: 'predict',
    model: opts.model,
    dataset: data.name,
    n: data.shape[0],
    backend,
    workers,
    seed: opts.seed,
    accuracy,
    seconds: round(seconds, 3),
    labels: Array.from(data.labels),
    predictions: Array.from(predictions),
    confidence: Array.from(confidence, (c) => round(c, 4)),
  };
  emit(
    result,
    opts,
    () =>
      `${data.name}: accuracy ${(accuracy * 100).toFixed(2)}% on ${data.shape[0]} examples (${round(seconds, 2)} s)`,
  );
}
