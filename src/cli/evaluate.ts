/**
 * `parry evaluate --config FILE --out DIR`: a whole robustness evaluation from one config file
 * (models, defences, attacks, budgets, certificates, groups), written as DIR/results.json and the
 * HTML report DIR/report.html. Finished cells go to DIR/partial.jsonl as they finish; `--resume`
 * continues an interrupted run. `--example` prints a config to start from.
 */
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { initBackend } from '../engine/backend.js';
import { WorkerPool } from '../engine/pool.js';
import { loadEvaluateConfig } from '../evaluate/config.js';
import type { EvaluationResults } from '../evaluate/results.js';
import { RESULTS_FILE, runEvaluation, type StageInfo } from '../evaluate/run.js';
import { renderReport } from '../report/index.js';
import { badOption, log, parsePositiveInt, parseUint32, progressBar, round } from './common.js';

interface EvaluateOptions {
  config?: string;
  out?: string;
  resume?: boolean;
  example?: boolean;
  workers?: number;
  seed?: number;
  backend?: string;
  json?: boolean;
  verbose?: boolean;
}

export const REPORT_FILE = 'report.html';

/** Printed by `--example`: the bundled models, from the repository root. */
export const EXAMPLE_CONFIG = `# parry evaluate --config eval.yaml --out out/eval
# Relative paths resolve against this file's directory.
title: Fashion-MNIST reference models
dataset: fashion-mnist-subset   # any --dataset spec; the first n test examples
n: 100
seed: 0
batchSize: 50
models:
  - path: models/fmnist-cnn-small
  - path: models/fmnist-mlp-ibp
  - name: fmnist-cnn-small
    path: models/fmnist-cnn-small
    defense:
      preprocess: squeeze-bits:bits=2   # parry defend --preprocess syntax
      adaptive: bpda                    # attacks see through it (BPDA); 'none' to attack it as is
attacks:
  - attack: fgsm
  - attack: pgd
    params: { steps: 20 }
  - attack: square
    params: { maxQueries: 100 }
eps:
  linf: [0.05, 0.1]
  l2: [1.0]
certify:
  ibp: true            # at the linf grid; or { eps: [0.01, 0.05] }
  # smoothing: { sigma: 0.25, n0: 100, n: 1000, alpha: 0.001 }
groups:
  byLabel:
    T-shirt/top: tops
    Pullover: tops
    Coat: tops
    Shirt: tops
    Dress: tops
    Trouser: bottoms
    Sandal: footwear
    Sneaker: footwear
    Ankle boot: footwear
    Bag: bags
gallery: { examples: 2 }
explain: { methods: [gradient, integrated-gradients] }
honesty: { enabled: true, examples: 50, moreSteps: { factor: 5, restarts: 2 } }
`;

export function evaluateCommand(): Command {
  return new Command('evaluate')
    .description(
      'evaluate models and defences from a config file: attacks over eps grids, per-example ' +
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
  const loaded = loadEvaluateConfig(opts.config);
  const config = opts.seed === undefined ? loaded : { ...loaded, seed: opts.seed };
  const backend = await initBackend(opts.backend);
  const workers = opts.workers ?? config.workers ?? availableParallelism();
  const pool = workers > 1 ? new WorkerPool({ workers, backend }) : undefined;
  const outDir = path.resolve(opts.out);
  let results: EvaluationResults;
  try {
    results = await runEvaluation(config, {
      outDir,
      pool,
      resume: opts.resume === true,
      onStage: (stage) => (stage.cached ? undefined : stageBar(stage)),
    });
  } finally {
    await pool?.close();
  }
  const report = path.join(outDir, REPORT_FILE);
  await writeFile(report, renderReport(results));
  log(headline(results));
  log(`results: ${path.join(outDir, RESULTS_FILE)}`);
  log(`report: ${report}`);
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify({ command: 'evaluate', ...summary(results), results: path.join(outDir, RESULTS_FILE), report, backend, workers: Math.max(workers, 1) })}\n`,
    );
  }
}

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

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : `${(v * 100).toFixed(1)}%`;

/** Per target: clean and worst-case accuracy per budget, certified accuracy, honesty warnings. */
function summary(r: EvaluationResults) {
  return {
    dataset: r.dataset.name,
    n: r.dataset.n,
    seed: (r.config as { seed?: number }).seed,
    targets: r.targets.map((t) => ({
      id: t.id,
      trained_against: t.trainedAgainst,
      clean_accuracy: t.clean.accuracy,
      worst_case: Object.fromEntries(
        t.worstCase.map((w) => [`${w.norm}:${w.eps}`, w.robustAccuracy]),
      ),
      certified: Object.fromEntries(
        t.certified.map((c) => [
          c.method,
          c.curve.map((p) => ({ radius: p.radius, accuracy: p.accuracy })),
        ]),
      ),
      honesty: Object.fromEntries(t.honesty.map((h) => [h.id, h.status])),
      seconds: round(t.cost.seconds, 2),
    })),
    notes: r.notes,
  };
}

/** A fixed-width table: target, clean, worst case per budget, honesty warnings. */
export function headline(r: EvaluationResults): string {
  const keys = [...new Set(r.targets.flatMap((t) => t.worstCase.map((w) => `${w.norm}:${w.eps}`)))];
  const head = ['target', 'clean', ...keys, 'certified', 'warnings'];
  const rows = r.targets.map((t) => [
    t.id,
    pct(t.clean.accuracy),
    ...keys.map((k) => pct(t.worstCase.find((w) => `${w.norm}:${w.eps}` === k)?.robustAccuracy)),
    t.certified
      .map((c) => `${c.method}@${c.curve.at(-1)?.radius} ${pct(c.curve.at(-1)?.accuracy)}`)
      .join(', ') || '-',
    t.honesty
      .filter((h) => h.status === 'warn')
      .map((h) => h.id)
      .join(', ') || '-',
  ]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, j) => c.padEnd(widths[j]))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
