/**
 * The robustness table of `models/fmnist-cnn-small`: every attack at L∞ eps 0.05, 0.1, 0.2 and L2
 * eps 1.0, 2.0 on the first N Fashion-MNIST subset test images (default 1,000), on one worker per
 * core. Minimum-norm attacks (deepfool, cw, hsj) run once per norm; their robust accuracy at eps is
 * the fraction of examples classified correctly and not broken within eps. Prints one JSON line
 * per cell as it finishes (stderr) and one JSON object at the end (stdout).
 *
 * `npm run bench -- table [--n N] [--attacks a,b] [--model DIR]`. Hours on 2 cores at N = 1,000.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { type AttackParams, findAttack } from '../src/attacks/registry.js';
import { loadDataset, takeFirst } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { packageRoot } from '../src/engine/paths.js';
import { WorkerPool } from '../src/engine/pool.js';
import { type AttackEvaluation, evaluateAttackPooled } from '../src/evaluate/robustness.js';

const GRID = { linf: [0.05, 0.1, 0.2], l2: [1.0, 2.0] } as const;
/** Per-attack settings: the CLI defaults unless a budget needs saying. */
const SETTINGS: Record<string, { params?: Partial<AttackParams>; n?: number }> = {
  pgd: { params: { steps: 20 } },
  bim: { params: { steps: 20 } },
  mim: { params: { steps: 20 } },
  // The expensive ones run on fewer images (the first n), said in each row.
  'apgd-ce': { n: 500 },
  'apgd-dlr': { n: 200 },
  'apgd-t': { n: 200 },
  auto: { n: 500 },
  square: { params: { maxQueries: 5000 }, n: 500 },
  cw: { n: 200 },
  hsj: { params: { maxQueries: 1000 }, n: 100 },
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

export async function benchTable(backend?: string): Promise<Record<string, unknown>> {
  const name = await initBackend(backend);
  const n = Number(arg('n') ?? 1000);
  const modelDir = arg('model') ?? path.join(packageRoot(), 'models', 'fmnist-cnn-small');
  const attacks = (
    arg('attacks') ?? 'fgsm,bim,pgd,mim,apgd-ce,apgd-dlr,apgd-t,square,auto,deepfool,cw,hsj'
  ).split(',');
  const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), n);
  const pool = new WorkerPool({ workers: availableParallelism(), backend: name });
  const rows: Record<string, unknown>[] = [];
  const emit = (row: Record<string, unknown>) => {
    rows.push(row);
    process.stderr.write(`${JSON.stringify(row)}\n`);
  };
  try {
    for (const attackName of attacks) {
      const attack = findAttack(attackName);
      if (attack === undefined) throw new Error(`unknown attack ${attackName}`);
      for (const norm of ['linf', 'l2'] as const) {
        if (!attack.norms.includes(norm)) continue;
        // Minimum-norm attacks take no eps: they search for the smallest perturbation.
        const params = (eps: number): AttackParams => ({
          norm,
          ...(attack.minimumNorm ? {} : { eps }),
          targeted: false,
          seed: 0,
          ...SETTINGS[attackName]?.params,
        });
        const subset = takeFirst(data, Math.min(n, SETTINGS[attackName]?.n ?? n));
        if (attack.minimumNorm) {
          const r = await evaluateAttackPooled(pool, modelDir, 10, subset, attack, params(0));
          for (const eps of GRID[norm]) emit(cell(attackName, norm, eps, r, withinEps(r, eps)));
        } else {
          for (const eps of GRID[norm]) {
            const r = await evaluateAttackPooled(pool, modelDir, 10, subset, attack, params(eps));
            emit(cell(attackName, norm, eps, r, r.robustAccuracy));
          }
        }
      }
    }
  } finally {
    await pool.close();
  }
  return { benchmark: 'table', backend: name, model: modelDir, n, rows };
}

/** Robust at eps for a minimum-norm attack: correct, and not broken by a perturbation ≤ eps. */
function withinEps(r: AttackEvaluation, eps: number): number {
  const robust = r.perExample.filter(
    (e) => e.clean === e.label && (e.adversarial === e.label || e.norm > eps),
  );
  return robust.length / r.n;
}

function cell(attack: string, norm: string, eps: number, r: AttackEvaluation, robust: number) {
  return {
    attack,
    norm,
    eps,
    n: r.n,
    clean_accuracy: r.cleanAccuracy,
    robust_accuracy: robust,
    ...(Number.isNaN(r.medianPerturbation) ? {} : { median_perturbation: r.medianPerturbation }),
    gradient_evaluations_per_example: r.gradientEvaluations / r.n,
    queries_per_example: r.queries / r.n,
    seconds: r.seconds,
  };
}
