/**
 * `parry evaluate --config FILE --out DIR`: a whole robustness evaluation from one config file
 * (models, defenses, attacks, budgets, certificates, groups), written as DIR/results.json and the
 * HTML report DIR/report.html. Finished cells go to DIR/partial.jsonl as they finish; `--resume`
 * continues an interrupted run. `--example` prints a config to start from. With `--queue URL` the
 * attack and certificate batches run as jobs on `parry worker` processes (docs/distributed.md),
 * under one progress bar over the queue's jobs.
 */

import path from 'node:path';
import { Command, Option } from 'commander';
import { initBackend } from '../engine/backend.js';
import { checkOutputDir, writeFileWhole } from '../engine/output-path.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { isParryError, ParryError } from '../errors.js';
import { loadEvaluateConfig } from '../evaluate/config.js';
import { EXAMPLE_CONFIG } from '../evaluate/example-config.js';
import type { EvaluationResults } from '../evaluate/results.js';
import { RESULTS_FILE, runEvaluation, type StageInfo } from '../evaluate/run.js';
import type { EngineChoice } from '../models/index.js';
import { REPORT_FILE, renderReport } from '../report/index.js';
import { evaluationSummary, headline } from '../report/summary.js';
import { badOption, engineOption, log, parsePositiveInt, parseUint32 } from './common.js';
import { progressBar } from './progress.js';
import {
  addQueueOptions,
  type Coordinator,
  checkQueueFlags,
  openQueue,
  type QueueFlags,
} from './queue-options.js';

interface EvaluateOptions extends QueueFlags {
  config?: string;
  out?: string;
  resume?: boolean;
  example?: boolean;
  workers?: number;
  seed?: number;
  backend?: string;
  engine?: EngineChoice;
  json?: boolean;
  verbose?: boolean;
}

export function evaluateCommand(): Command {
  const cmd = new Command('evaluate')
    .description(
      'evaluate models and defenses from a config file: attacks over eps grids, per-example ' +
        'worst case, certificates, fairness, honesty checks; writes results.json and report.html',
    )
    .option('--config <file>', 'evaluation config, JSON or YAML (see --example)')
    .option(
      '--out <dir>',
      'directory for results.json, report.html (and partial.jsonl while running)',
    )
    .option('--resume', 'continue an interrupted run from DIR/partial.jsonl')
    .option('--example', 'print an example config (YAML) and exit')
    .option(
      '--workers <n>',
      "worker threads (default: the config's, else one per core; 1 runs in this thread)",
      parsePositiveInt,
    )
    .option('--seed <n>', "random seed (overrides the config's)", parseUint32)
    .addOption(
      new Option(
        '--backend <name>',
        'tfjs backend: wasm (default), cpu, or any registered one',
      ).env('PARRY_BACKEND'),
    )
    .addOption(engineOption());
  return addQueueOptions(cmd, 'the attack and certificate batches')
    .option('--json', 'print exactly one JSON object (a summary) on stdout')
    .option('--verbose', 'print stack traces on errors')
    .action((opts: EvaluateOptions) => runEvaluate(opts));
}

async function runEvaluate(opts: EvaluateOptions): Promise<void> {
  if (opts.example) {
    process.stdout.write(EXAMPLE_CONFIG);
    return;
  }
  if (opts.config === undefined)
    throw badOption('evaluate: --config FILE is required (or --example)');
  if (opts.out === undefined) throw badOption('evaluate: --out DIR is required');
  checkOutputDir(opts.out, '--out');
  checkQueueFlags('evaluate', opts);
  const loaded = loadEvaluateConfig(opts.config);
  const config = opts.seed === undefined ? loaded : { ...loaded, seed: opts.seed };
  process.env.PARRY_ENGINE = opts.engine ?? 'auto';
  const backend = await initBackend(opts.backend);
  const workers = chooseWorkers(opts.workers ?? config.workers);
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const outDir = path.resolve(opts.out);
  let results: EvaluationResults;
  let queue: Coordinator | undefined;
  try {
    if (opts.queue !== undefined) {
      queue = await openQueue('evaluate', opts.queue, opts.attempts, backend);
    }
    results = await inCommandTerms(() =>
      runEvaluation(config, {
        outDir,
        pool,
        queue: queue?.executor,
        resume: opts.resume === true,
        onStage: (stage) => (stage.cached || queue ? undefined : stageBar(stage)),
      }),
    );
  } catch (e) {
    await queue?.close(false);
    throw e;
  } finally {
    queue?.stopBar();
    await pool?.close();
  }
  const report = path.join(outDir, REPORT_FILE);
  await writeFileWhole(report, renderReport(results));
  const failures = queue?.executor.failures() ?? [];
  // Every result is in results.json now, so the queue's copies can go; after a failure they stay
  // for the resumed run.
  await queue?.close(true);
  if (failures.length > 0) {
    const cells = results.failed?.length ?? 0;
    const left =
      cells > 0
        ? `${cells} cell${cells === 1 ? '' : 's'}, each named in a note`
        : 'the targets the notes name';
    throw new ParryError(
      'INTERNAL',
      `evaluate: ${failures.length} job${failures.length === 1 ? '' : 's'} failed (${failures[0].message}); ` +
        `results.json and report.html leave out ${left}; ${PARTIAL_KEPT}`,
    );
  }
  log(headline(results));
  log(`results: ${path.join(outDir, RESULTS_FILE)}`);
  log(`report: ${report}`);
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ command: 'evaluate', ...evaluationSummary(results), results: path.join(outDir, RESULTS_FILE), report, backend, workers: Math.max(workers, 1) })}\n`,
    );
  }
}

/** The library names the run's options; the command names its flags. */
async function inCommandTerms<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (!isParryError(e)) throw e;
    const message = e.message
      .replace('set resume to', 'add --resume to')
      .replace('write to another outDir', 'use a new --out directory');
    throw new ParryError(e.code, message, { cause: e, issues: e.issues });
  }
}

const PARTIAL_KEPT =
  'partial.jsonl keeps the finished cells: fix the cause and rerun with --resume (only the failed jobs run again)';

function stageBar(stage: StageInfo) {
  const bar = progressBar(`${stage.label} |{bar}| {value}/{total} | ETA {eta_formatted}`);
  bar.start(stage.total, 0);
  return {
    progress: (done: number, total: number) => {
      if (total !== stage.total) bar.setTotal(total);
      bar.update(done);
    },
    end: () => bar.stop(),
  };
}
