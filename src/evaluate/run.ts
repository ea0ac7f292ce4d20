/**
 * `runEvaluation`: the whole evaluation of a config, written to `OUT/results.json`
 * (`EvaluationResults`). Per target (a model, optionally behind its defense): clean predictions;
 * every attack × norm × eps; the per-example worst case per norm and eps; certificates; fairness
 * per class and group; a gallery with saliency maps; honesty checks. Each finished cell is
 * appended to `OUT/partial.jsonl`, so that `resume` continues an interrupted run; the same config
 * and seed give the same numbers, in one thread, across a pool, or across a job queue.
 *
 * With a job queue (`queue`, engine/queue) the attack and certificate batches of every target run
 * as jobs on `parry worker` processes: all attack cells' jobs are submitted at the start (so the
 * workers have work from every cell at once), then the cells are gathered in their usual order.
 * A cell whose job failed after its attempts (or was refused) is left out of the results, named
 * in `failed` and in a note (cell, job, attempts, error); what depends on it goes too (the worst
 * case at its budgets; a smoothed target, whose clean predictions are its certificate's), the
 * rest is finished, and partial.jsonl is kept so that a resumed run computes only what failed.
 */

import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { findAttack } from '../attacks/registry.js';
import { writeFileWhole } from '../engine/output-path.js';
import type { Executor, WorkerPool } from '../engine/pool.js';
import { JobFailedError } from '../engine/queue/executor.js';
import { withJobLabel } from '../engine/queue/label.js';
import { attackStage, attackTarget, type CleanRecord } from './attacks.js';
import { stored, worstCase } from './cells.js';
import {
  type BoundsRecord,
  boundsResult,
  certifyBoundsCell,
  type SmoothingRecord,
  smoothingCell,
  smoothingResult,
} from './certified.js';
import {
  attackId,
  attackNorms,
  configHash,
  EVAL_NORMS,
  type EvaluateConfig,
  type SmoothingConfig,
} from './config.js';
import {
  cell,
  cellOrFailure,
  cellSeed,
  type EvalContext,
  exampleJobs,
  middle,
  type StageHandle,
  type StageInfo,
} from './context.js';
import { fairness } from './fairness.js';
import { inputFingerprints } from './fingerprint.js';
import { skipped } from './honesty.js';
import { honestyStage } from './honesty-runs.js';
import {
  deployed,
  disposeTargets,
  loadExamples,
  prepareTargets,
  rejectLabel,
  resolveGroups,
  type Target,
} from './inputs.js';
import { lockOutDir } from './out-lock.js';
import { PartialStore } from './partial.js';
import { poisoningStage } from './poisoning.js';
import { predictDataset } from './predictions.js';
import { privacyStage } from './privacy-stage.js';
import {
  type CertifiedResult,
  type EvaluationResults,
  RESULTS_VERSION,
  type TargetResults,
} from './results.js';

export type { StageHandle, StageInfo } from './context.js';

export interface RunEvaluationOptions {
  outDir: string;
  /** Workers for attacks and smoothing certificates of plain models; without, all in this thread. */
  pool?: WorkerPool;
  /**
   * A job queue for the targets' attack and certificate batches and the privacy section's
   * population of models (instead of `pool`, which still serves the poisoning stage and the rest of
   * the privacy section).
   */
  queue?: Executor;
  onStage?: (stage: StageInfo) => StageHandle | undefined;
  /** Continue from `outDir/partial.jsonl` (written for the same config). */
  resume?: boolean;
  signal?: AbortSignal;
}

export const RESULTS_FILE = 'results.json';

const HONESTY_IDS = [
  'unbounded-eps',
  'monotone-eps',
  'more-steps',
  'black-vs-white',
  'random-noise',
  'gradients',
] as const;

export async function runEvaluation(
  config: EvaluateConfig,
  opts: RunEvaluationOptions,
): Promise<EvaluationResults> {
  const started = new Date().toISOString();
  const data = loadExamples(config);
  const groups = resolveGroups(config, data.labels, data.classNames);
  const targets = await prepareTargets(config, data);
  let unlock: (() => void) | undefined;
  try {
    await mkdir(opts.outDir, { recursive: true });
    unlock = lockOutDir(opts.outDir);
    // Engines differ in the last digits, so a run resumes only on the engines it started on.
    const engines = targets.map((t) => engineOf(t)).join(',');
    const key = `${configHash(config)}:${engines}`;
    const inputs = inputFingerprints(config, data);
    const store = await PartialStore.open(opts.outDir, key, opts.resume ?? false, inputs);
    const { queue, ...rest } = opts;
    const ctx: EvalContext = {
      config,
      data,
      store,
      ...rest,
      pool: queue ?? opts.pool,
      notes: [],
      failed: [],
    };
    if (ctx.pool) {
      for (const t of targets.filter((t) => t.pooled === null)) {
        ctx.notes.push(
          `${t.id}: attacks run in the main thread (the pool's workers cannot load a fitted detector)`,
        );
      }
    }
    if (queue) submitAttackCells(ctx, targets);
    const results: TargetResults[] = [];
    let failed = false;
    for (const t of targets) {
      try {
        const r = await evaluateTarget(ctx, t, groups);
        if (r) results.push(r);
      } catch (e) {
        // Every stage that sends jobs leaves a failed cell out by itself; this is the backstop.
        if (!(e instanceof JobFailedError)) throw e;
        failed = true;
        ctx.notes.push(`${t.id}: not evaluated: ${e.message}`);
      }
    }
    const local = { ...ctx, pool: opts.pool };
    const poisoning = await poisoningStage(local);
    // The queue takes the membership population's training (one job per model), not the rest.
    const privacy = await privacyStage(local, queue);
    const out: EvaluationResults = {
      version: RESULTS_VERSION,
      started,
      finished: new Date().toISOString(),
      config: config as unknown as Record<string, unknown>,
      dataset: {
        name: config.dataset,
        n: data.shape[0],
        classNames: data.classNames,
        inputShape: data.shape.slice(1),
        labels: Array.from(data.labels),
        groups,
      },
      targets: results,
      ...(poisoning ? { poisoning } : {}),
      ...(privacy ? { privacy } : {}),
      notes: [...new Set(ctx.notes)],
      ...(ctx.failed.length > 0 ? { failed: ctx.failed } : {}),
    };
    await writeFileWhole(path.join(opts.outDir, RESULTS_FILE), `${JSON.stringify(out)}\n`);
    if (!failed && ctx.failed.length === 0) await store.remove();
    return out;
  } finally {
    unlock?.();
    disposeTargets(targets);
  }
}

/** The results of target `t`; null when its smoothed classifier's certificate failed. */
async function evaluateTarget(
  ctx: EvalContext,
  t: Target,
  groups: string[] | null,
): Promise<TargetResults | null> {
  const { config, data } = ctx;
  const labels = data.labels;
  const smoothing = t.smoothing ?? t.certify.smoothing ?? null;
  const smoothed = smoothing ? await smoothingStage(ctx, t, smoothing) : null;
  if (t.smoothing && smoothed === undefined) {
    ctx.notes.push(
      `${t.id}: not evaluated: its clean predictions come from its smoothing certificate, which failed`,
    );
    return null;
  }
  const clean = t.smoothing ? smoothedClean(smoothed!) : await cleanStage(ctx, t);
  if (t.smoothing) {
    ctx.notes.push(`${t.id}: the smoothed classifier is certified, not attacked`);
  }
  const { cells, gallery } = t.smoothing
    ? { cells: [], gallery: [] }
    : await attackStage(ctx, t, clean);
  const worst = worstCase(labels, clean.predictions, cells, completeGrids(ctx, t));
  const certified = await boundsStage(ctx, t);
  if (smoothed) certified.push(smoothingResult(smoothed, smoothing!, labels));
  const honesty = !config.honesty.enabled
    ? []
    : t.smoothing
      ? HONESTY_IDS.map((id) =>
          skipped(id, 'A smoothed classifier is certified here, not attacked.'),
        )
      : await honestyStage(ctx, t, clean, cells, worst);
  return {
    id: t.id,
    model: t.model,
    defense: t.defense,
    trainedAgainst: t.trainedAgainst,
    engine: engineOf(t),
    clean: {
      accuracy: clean.predictions.filter((p, i) => p === labels[i]).length / labels.length,
      predictions: clean.predictions,
      confidences: clean.confidences,
      seconds: clean.seconds,
    },
    attacks: cells,
    worstCase: worst,
    certified,
    fairness: fairness(labels, data.classNames, groups, clean.predictions, worst),
    honesty,
    gallery,
    cost: targetCost(ctx, t),
  };
}

/**
 * Submits the jobs of every attack cell not yet recorded, all at once, without waiting: the attack
 * stage, asking for the same cells in its order, then finds each job (same content, same key)
 * running or finished. The cells and their seeds are those of `attackStage`; a cell that differed
 * would only be computed by the stage itself (the test of the queue checks none does).
 */
function submitAttackCells(ctx: EvalContext, targets: readonly Target[]): void {
  const { config, data } = ctx;
  const n = data.shape[0];
  for (const t of targets) {
    if (t.smoothing || t.pooled === null) continue;
    for (const a of config.attacks) {
      const entry = findAttack(a.attack)!;
      for (const norm of attackNorms(config, a)) {
        const grid = config.eps[norm]!;
        for (const eps of entry.minimumNorm ? [null] : grid) {
          const key = { target: t.id, stage: 'attack', attack: attackId(a), norm, eps };
          if (ctx.store.get(key) !== undefined) continue;
          const label = `${t.id}: ${attackId(a)} ${norm}${eps === null ? '' : ` ${eps}`}`;
          const keep =
            config.gallery.examples > 0 && (eps === null || eps === middle(grid)) ? n : 0;
          const seed = cellSeed(config.seed, key);
          const params = { ...a.params, norm, ...(eps === null ? {} : { eps }), seed };
          const run = () => attackTarget(ctx, t, entry, params, data, keep, () => {});
          withJobLabel(label, run).catch(() => {}); // the stage reports the cell's errors
        }
      }
    }
  }
}

/** The engine running a target's model. */
const engineOf = (t: Target) => t.base.engine?.name ?? 'tfjs';

function cleanStage(ctx: EvalContext, t: Target): Promise<CleanRecord> {
  const key = { target: t.id, stage: 'clean', attack: null, norm: null, eps: null };
  return cell(ctx, key, `${t.id}: clean`, ctx.data.shape[0], async (seed, progress) => {
    const started = performance.now();
    const p = await predictDataset(deployed(t, seed), ctx.data, ctx.config.batchSize, progress);
    const reject = rejectLabel(t);
    return {
      predictions: Array.from(p.predictions, (v) => stored(v, reject)),
      confidences: Array.from(p.confidence),
      seconds: (performance.now() - started) / 1000,
    };
  });
}

/** A smoothed target's clean predictions: the smoothed classifier's (-1 = abstained). */
function smoothedClean(rec: SmoothingRecord): CleanRecord {
  return { predictions: rec.predictions, confidences: rec.pALower, seconds: rec.seconds };
}

/** The smoothing certificate's record, or undefined when a job of it failed on the queue. */
function smoothingStage(
  ctx: EvalContext,
  t: Target,
  config: SmoothingConfig,
): Promise<SmoothingRecord | undefined> {
  const key = { target: t.id, stage: 'certify', attack: 'smoothing', norm: 'l2', eps: null };
  const n = ctx.data.shape[0];
  const label = `${t.id}: smoothing sigma ${config.sigma}`;
  return cellOrFailure(ctx, key, label, n, exampleJobs, (seed, progress) =>
    smoothingCell(deployed(t, seed), t.modelDir, ctx.data, config, seed, ctx.pool, {
      onProgress: progress,
      signal: ctx.signal,
    }),
  );
}

/**
 * The eps grids of the worst case: without the budgets where an attack cell of `t` failed (a
 * worst case over fewer attacks would overstate robustness there), each named in a note.
 */
function completeGrids(ctx: EvalContext, t: Target): EvaluateConfig['eps'] {
  const grids = ctx.config.eps;
  const failed = ctx.failed.filter((f) => f.target === t.id && f.stage === 'attack');
  if (failed.length === 0) return grids;
  const out: EvaluateConfig['eps'] = {};
  for (const norm of EVAL_NORMS) {
    const grid = grids[norm];
    if (grid === undefined) continue;
    out[norm] = grid.filter((eps) => {
      // A minimum-norm attack's one cell (eps null) serves every budget of its norm.
      const gone = failed.filter((f) => f.norm === norm && (f.eps === null || f.eps === eps));
      if (gone.length > 0) {
        const attacks = [...new Set(gone.map((f) => f.attack))].join(', ');
        ctx.notes.push(
          `${t.id}: worst case at ${norm} ${eps} left out: the cell of ${attacks} there failed`,
        );
      }
      return gone.length === 0;
    });
  }
  return out;
}

/** IBP and CROWN at their grids; a note instead when they do not apply or the layers are unsupported. */
async function boundsStage(ctx: EvalContext, t: Target): Promise<CertifiedResult[]> {
  const out: CertifiedResult[] = [];
  for (const method of ['ibp', 'crown'] as const) {
    const c = t.certify[method];
    if (c === undefined) continue;
    if (t.preprocessors || t.smoothing) {
      ctx.notes.push(
        `${t.id}: ${method} skipped: bound propagation certifies the model itself, not its defense`,
      );
      continue;
    }
    const grid = c.eps ?? ctx.config.eps.linf!;
    const records: BoundsRecord[] = [];
    for (const eps of grid) {
      const key = { target: t.id, stage: 'certify', attack: method, norm: 'linf', eps };
      const label = `${t.id}: ${method} linf ${eps}`;
      const rec = await cell(ctx, key, label, ctx.data.shape[0], (_seed, progress) =>
        certifyBoundsCell(t.base, ctx.data, method, eps, progress),
      );
      records.push(rec);
      if ('unsupported' in rec) {
        ctx.notes.push(`${t.id}: ${method} skipped: ${rec.unsupported}`);
        break;
      }
    }
    const result = boundsResult(method, grid, records);
    if (result) out.push(result);
  }
  return out;
}

/** Seconds, gradient evaluations and queries of every cell of the target. */
function targetCost(ctx: EvalContext, t: Target): TargetResults['cost'] {
  const cost = { seconds: 0, gradientEvaluations: 0, queries: 0 };
  for (const [key, value] of ctx.store.entries()) {
    if (key.target !== t.id) continue;
    const v = value as { seconds?: number; gradientEvaluations?: number; queries?: number };
    cost.seconds += v.seconds ?? 0;
    cost.gradientEvaluations += v.gradientEvaluations ?? 0;
    cost.queries += v.queries ?? 0;
  }
  return cost;
}
