/**
 * The attack stage of a target: every configured attack × norm × eps as one cell, across the
 * worker pool when there is one (each worker loads the model and builds its preprocessing chain;
 * a fitted detector stays in this thread, so a detecting target is attacked here with
 * `evaluateAttack`). Minimum-norm attacks run once per norm. At each norm's middle budget the
 * cell also keeps its gallery, so a resumed run needs no adversarial inputs. A cell whose job
 * failed on a job queue is left out, the others are kept.
 */
import { createJointAttack } from '../adaptive/joint.js';
import {
  type AttackEntry,
  type AttackParams,
  defineAttack,
  findAttack,
  measureAttack,
} from '../attacks/registry.js';
import type { Dataset } from '../data/index.js';
import { type AttackRun, attackRunOf, type CellMeta, cellOf } from './cells.js';
import { type AttackConfig, attackId, attackNorms, type EvalNorm } from './config.js';
import { batchJobs, cell, cellOrFailure, type EvalContext, middle } from './context.js';
import { galleryItems } from './gallery.js';
import { attacker, deployed, rejectLabel, type Target } from './inputs.js';
import type { AttackCell, GalleryItem } from './results.js';
import { type AttackEvaluation, evaluateAttack, evaluateAttackPooled } from './robustness.js';

export interface CleanRecord {
  predictions: number[];
  confidences: number[];
  seconds: number;
}

type RunRecord = AttackRun & { gallery?: GalleryItem[]; notes?: string[] };

/** Runs `attack` on `data` against the target (pooled when it can be), seeded by `params.seed`. */
export function attackTarget(
  ctx: EvalContext,
  t: Target,
  attack: AttackEntry,
  params: AttackParams,
  data: Dataset,
  keepExamples: number,
  onProgress: (done: number, total: number) => void,
): Promise<AttackEvaluation> {
  const opts = { batchSize: ctx.config.batchSize, keepExamples, onProgress, signal: ctx.signal };
  if (ctx.pool && t.pooled) {
    return evaluateAttackPooled(ctx.pool, t.pooled, t.base.numClasses, data, attack, params, opts);
  }
  // A preprocessing defense is built per batch from the batch's seed, as the pool's workers do.
  const model = t.preprocessors ? (seed: number) => attacker(t, seed) : attacker(t, params.seed);
  return evaluateAttack(model, data, attack, params, opts);
}

function meta(a: AttackConfig, entry: AttackEntry, norm: EvalNorm, eps: number): CellMeta {
  return {
    attack: attackId(a),
    kind: entry.name,
    norm,
    eps,
    params: { ...a.params, ...(entry.minimumNorm ? { minimumNorm: true } : {}) },
    minimumNorm: entry.minimumNorm,
    targeted: a.params.targeted ?? false,
  };
}

/**
 * Every attack cell of target `t`, in config order, and the gallery. A cell whose job failed on
 * the job queue is left out (`ctx.failed` names it).
 */
export async function attackStage(
  ctx: EvalContext,
  t: Target,
  clean: CleanRecord,
): Promise<{ cells: AttackCell[]; gallery: GalleryItem[] }> {
  const { config, data } = ctx;
  const n = data.shape[0];
  const cells: AttackCell[] = [];
  const gallery: GalleryItem[] = [];
  for (const a of config.attacks) {
    const entry = findAttack(a.attack)!;
    for (const norm of attackNorms(config, a)) {
      const grid = config.eps[norm]!;
      const mid = middle(grid);
      for (const eps of entry.minimumNorm ? [null] : grid) {
        const key = { target: t.id, stage: 'attack', attack: attackId(a), norm, eps };
        const label = `${t.id}: ${attackId(a)} ${norm}${eps === null ? '' : ` ${eps}`}`;
        const withGallery = config.gallery.examples > 0 && (eps === null || eps === mid);
        const jobs = batchJobs(config.batchSize, n);
        const rec = await cellOrFailure<RunRecord>(
          ctx,
          key,
          label,
          n,
          jobs,
          async (seed, progress) => {
            const params: AttackParams = {
              ...a.params,
              norm,
              ...(eps === null ? {} : { eps }),
              seed,
            };
            const r = await attackTarget(
              ctx,
              t,
              entry,
              params,
              data,
              withGallery ? n : 0,
              progress,
            );
            const run = attackRunOf(r, rejectLabel(t));
            if (!withGallery) return run;
            const g = await galleryItems({
              cell: cellOf(run, data.labels, meta(a, entry, norm, mid)),
              labels: data.labels,
              cleanPredictions: clean.predictions,
              cleanConfidences: clean.confidences,
              x: r.examples.x,
              xAdv: r.examples.xAdv,
              shape: data.shape.slice(1),
              k: config.gallery.examples,
              zoom: config.gallery.zoom,
              model: deployed(t, seed),
              gradientModel: attacker(t, seed),
              methods: config.explain?.methods ?? [],
              samples: config.explain?.samples,
              seed,
            });
            return { ...run, gallery: g.items, notes: g.notes };
          },
        );
        if (rec === undefined) continue; // its job failed: left out, named in a note
        ctx.notes.push(...(rec.notes ?? []));
        gallery.push(...(rec.gallery ?? []));
        for (const e of eps === null ? grid : [eps]) {
          cells.push(cellOf(rec, data.labels, meta(a, entry, norm, e)));
        }
      }
    }
  }
  if (t.detector) cells.push(...(await jointStage(ctx, t)));
  return { cells, gallery };
}

export const JOINT_ATTACK = 'joint';

/**
 * The joint adaptive attack on a detecting target (src/adaptive/joint.ts) as a registry
 * entry: it ignores the DetectingClassifier it is handed and attacks the base model and the
 * detector together; `evaluateAttack` then reads the DetectingClassifier's predictions.
 */
function jointEntry(t: Target): AttackEntry {
  const { detector, jointSteps } = t.detector!;
  return defineAttack({
    name: JOINT_ATTACK,
    description: 'joint attack on classifier and detector',
    norms: ['linf', 'l2'],
    requires: ['gradients'],
    targeted: false,
    options: {},
    create: (o) => async (model, x, labels, run) => {
      const norm = o.norm === 'l2' ? 'l2' : 'linf';
      const attack = createJointAttack({ eps: o.eps, norm, steps: jointSteps, seed: o.seed });
      const r = await attack(t.base, detector, x, labels, run.signal);
      const cost = { gradientEvaluations: r.gradientEvaluations, queries: 0 };
      return measureAttack(model, x, r.xAdv, labels, o, run, cost);
    },
  });
}

/** The joint attack at every L∞ and L2 budget of the grid. */
async function jointStage(ctx: EvalContext, t: Target): Promise<AttackCell[]> {
  const { config, data } = ctx;
  const entry = jointEntry(t);
  const cells: AttackCell[] = [];
  for (const norm of ['linf', 'l2'] as const) {
    for (const eps of config.eps[norm] ?? []) {
      const key = { target: t.id, stage: 'attack', attack: JOINT_ATTACK, norm, eps };
      const label = `${t.id}: joint ${norm} ${eps}`;
      const run = await cell<AttackRun>(ctx, key, label, data.shape[0], async (seed, progress) => {
        const params: AttackParams = { norm, eps, seed, targeted: false };
        const opts = { batchSize: config.batchSize, onProgress: progress, signal: ctx.signal };
        const r = await evaluateAttack(deployed(t, seed), data, entry, params, opts);
        return attackRunOf(r, rejectLabel(t));
      });
      cells.push(
        cellOf(run, data.labels, {
          attack: JOINT_ATTACK,
          kind: JOINT_ATTACK,
          norm,
          eps,
          params: { steps: t.detector!.jointSteps },
          minimumNorm: false,
          targeted: false,
        }),
      );
    }
  }
  return cells;
}
