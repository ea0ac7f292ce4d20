/**
 * The attack stage of a target: every configured attack × norm × eps as one cell, across the
 * worker pool when the target is a plain model directory the workers can load, otherwise (a
 * preprocessing defence: the pool's attack task carries no preprocess spec) in this thread with
 * `evaluateAttack`. Minimum-norm attacks run once per norm. At each norm's middle budget the
 * cell also keeps its gallery, so a resumed run needs no adversarial inputs.
 */
import { type AttackEntry, type AttackParams, findAttack } from '../attacks/registry.js';
import type { Dataset } from '../data/index.js';
import { type AttackRun, attackRunOf, type CellMeta, cellOf } from './cells.js';
import { type AttackConfig, attackId, attackNorms, type EvalNorm } from './config.js';
import { cell, type EvalContext, middle } from './context.js';
import { galleryItems } from './gallery.js';
import { attacker, deployed, type Target } from './inputs.js';
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
  if (ctx.pool && t.modelDir) {
    return evaluateAttackPooled(
      ctx.pool,
      t.modelDir,
      t.base.numClasses,
      data,
      attack,
      params,
      opts,
    );
  }
  return evaluateAttack(attacker(t, params.seed), data, attack, params, opts);
}

function meta(a: AttackConfig, entry: AttackEntry, norm: EvalNorm, eps: number): CellMeta {
  return {
    attack: attackId(a),
    kind: entry.name,
    norm,
    eps,
    params: { ...a.params, ...(entry.minimumNorm ? { minimumNorm: true } : {}) },
    minimumNorm: entry.minimumNorm,
    targeted: a.params.targeted,
  };
}

/** Every attack cell of target `t`, in config order, and the gallery. */
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
        const rec = await cell<RunRecord>(ctx, key, label, n, async (seed, progress) => {
          const params: AttackParams = { ...a.params, norm, eps: eps ?? 0, seed };
          const r = await attackTarget(ctx, t, entry, params, data, withGallery ? n : 0, progress);
          const run = attackRunOf(r);
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
        });
        ctx.notes.push(...(rec.notes ?? []));
        gallery.push(...(rec.gallery ?? []));
        for (const e of eps === null ? grid : [eps]) {
          cells.push(cellOf(rec, data.labels, meta(a, entry, norm, e)));
        }
      }
    }
  }
  return { cells, gallery };
}
