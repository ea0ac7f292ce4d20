/**
 * From attack runs to the cells of `results.json`: one cell per attack × norm × eps, and per norm
 * and eps the per-example worst case over every attack. Pure functions of plain arrays, so the
 * numbers can be recomputed from results.json alone.
 *
 * An example is robust in a cell when the model classifies it correctly clean and, attacked,
 * either classifies it correctly or abstains (-1: a detector rejected the adversarial input; a
 * rejected clean input is an error). A minimum-norm attack (DeepFool, C&W, HopSkipJump) runs once per
 * norm; at budget eps it breaks an example only if the perturbation it found is within eps,
 * otherwise the example keeps its clean prediction (as `bench/table.ts` thresholds them).
 */

import type { AttackCell, Norm, WorstCaseCell } from './results.js';
import type { AttackEvaluation } from './robustness.js';

/** Attacks that only query the model (scores or labels); every other attack reads gradients. */
export const BLACK_BOX_ATTACKS: readonly string[] = ['square', 'hsj'];

/** What one attack run leaves behind, per example: the record kept in partial.jsonl. */
export interface AttackRun {
  clean: number[];
  adversarial: number[];
  /** Size of the perturbation in the run's norm. */
  norms: number[];
  /** Target classes of a targeted run. */
  targets?: number[];
  gradientEvaluations: number;
  queries: number;
  seconds: number;
}

/** A prediction as results.json stores it: -1 for the reject label of a detecting target. */
export const stored = (p: number, reject: number | null) => (p === reject ? -1 : p);

/** The record of `r`; predictions equal to `reject` (a detector's abstention) become -1. */
export function attackRunOf(r: AttackEvaluation, reject: number | null = null): AttackRun {
  const targets = r.perExample.some((e) => e.target !== undefined)
    ? r.perExample.map((e) => e.target ?? -1)
    : undefined;
  return {
    clean: r.perExample.map((e) => stored(e.clean, reject)),
    adversarial: r.perExample.map((e) => stored(e.adversarial, reject)),
    norms: r.perExample.map((e) => e.norm),
    ...(targets ? { targets } : {}),
    gradientEvaluations: r.gradientEvaluations,
    queries: r.queries,
    seconds: r.seconds,
  };
}

export interface CellMeta {
  attack: string;
  kind: string;
  norm: Norm;
  eps: number;
  params: Record<string, unknown>;
  minimumNorm: boolean;
  targeted: boolean;
}

/**
 * The cell of `run` at budget `meta.eps`. Success is misclassification (untargeted) or the target
 * class (targeted); perturbation statistics are over successful examples, null when none.
 */
export function cellOf(run: AttackRun, labels: ArrayLike<number>, meta: CellMeta): AttackCell {
  const n = run.clean.length;
  const robust: number[] = [];
  const adversarial: number[] = [];
  const sizes: number[] = [];
  let correct = 0;
  let succeeded = 0;
  for (let i = 0; i < n; i++) {
    const within = !meta.minimumNorm || run.norms[i] <= meta.eps;
    const adv = within ? run.adversarial[i] : run.clean[i];
    adversarial.push(adv);
    const ok = run.clean[i] === labels[i];
    robust.push(ok && (adv === labels[i] || adv === -1) ? 1 : 0);
    if (!ok) continue;
    correct++;
    const success = meta.targeted ? adv === run.targets?.[i] : adv !== labels[i] && adv !== -1;
    if (success) {
      succeeded++;
      sizes.push(run.norms[i]);
    }
  }
  sizes.sort((a, b) => a - b);
  const mid = sizes.length >> 1;
  return {
    attack: meta.attack,
    kind: meta.kind,
    norm: meta.norm,
    eps: meta.eps,
    params: meta.params,
    whiteBox: !BLACK_BOX_ATTACKS.includes(meta.kind),
    robustAccuracy: n === 0 ? 0 : robust.reduce((s, v) => s + v, 0) / n,
    attackSuccessRate: correct === 0 ? 0 : succeeded / correct,
    meanPerturbation: sizes.length === 0 ? null : sizes.reduce((s, v) => s + v, 0) / sizes.length,
    medianPerturbation:
      sizes.length === 0
        ? null
        : sizes.length % 2 === 1
          ? sizes[mid]
          : (sizes[mid - 1] + sizes[mid]) / 2,
    robust,
    adversarial,
    seconds: run.seconds,
    gradientEvaluations: run.gradientEvaluations,
    queries: run.queries,
  };
}

/**
 * Per norm and eps (in `grids` order), the per-example worst case over `cells` in their order:
 * robust only if classified correctly clean and robust in every cell at that norm and eps;
 * `brokenBy` is 'clean' (misclassified without attack), the first cell's attack that broke it,
 * or null. Norm/eps pairs no cell covers are left out.
 */
export function worstCase(
  labels: ArrayLike<number>,
  cleanPredictions: ArrayLike<number>,
  cells: readonly AttackCell[],
  grids: Partial<Record<Norm, number[]>>,
): WorstCaseCell[] {
  const out: WorstCaseCell[] = [];
  for (const norm of ['linf', 'l2', 'l1'] as const) {
    for (const eps of grids[norm] ?? []) {
      const here = cells.filter((c) => c.norm === norm && c.eps === eps);
      if (here.length === 0) continue;
      const brokenBy = Array.from(labels, (y, i): string | null => {
        if (cleanPredictions[i] !== y) return 'clean';
        return here.find((c) => c.robust[i] === 0)?.attack ?? null;
      });
      const robust = brokenBy.map((b) => (b === null ? 1 : 0));
      out.push({
        norm,
        eps,
        robustAccuracy:
          robust.length === 0 ? 0 : robust.reduce<number>((s, v) => s + v, 0) / robust.length,
        robust,
        brokenBy,
      });
    }
  }
  return out;
}

/** `${norm}:${eps}`, the key of fairness tables. */
export const budgetKey = (norm: Norm, eps: number) => `${norm}:${eps}`;
