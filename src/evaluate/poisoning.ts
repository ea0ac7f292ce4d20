/**
 * The evaluation's poisoning section: a recipe × defence grid. A clean reference model is trained
 * on the training split of `poisoning.dataset`; each recipe poisons that split (seeded), a model of
 * the same architecture and seed is trained on it, and its clean accuracy and — for backdoors — its
 * attack success rate (ASR: the triggered test examples of other classes classified as the target)
 * are measured on the test split. Each defence then runs on the poisoned model: data inspections
 * are scored against the recipe's indices (precision, recall, FPR, ROC) and, with `retrain`, a
 * model is retrained on the set without the flagged examples; Neural Cleanse reports anomaly
 * indices and reversed triggers (and unlearns with `unlearn`); fine-pruning prunes a copy. Every
 * after-defence model is measured like the poisoned one. One recipe is one resumable cell.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  findPoisonAttack,
  type PoisonManifest,
  runPoison,
  triggeredTestSet,
} from '../attacks/poisoning/index.js';
import { certifyDpa, trainDpa } from '../certify/partition-aggregation.js';
import { imagePng, pngDataUri } from '../data/image-encoding.js';
import { type Dataset, firstExamples, loadDataset, selectExamples } from '../data/index.js';
import { StripDetector } from '../defenses/detection/strip.js';
import {
  INSPECTIONS,
  runInspection,
  runScan,
  SCANS,
  scoreInspection,
} from '../defenses/poisoning/index.js';
import { ParryError } from '../errors.js';
import { buildArchitecture } from '../models/architectures.js';
import { TfjsClassifier } from '../models/tfjs-classifier.js';
import { trainModel } from '../train/loop.js';
import type { EvaluateConfig } from './config.js';
import { cell, type EvalContext } from './context.js';
import { predictDataset } from './predictions.js';
import type {
  DpaSummary,
  Measured,
  PoisonDefenseResult,
  PoisoningResults,
  PoisonRecipeResult,
} from './results.js';

export type PoisoningConfig = NonNullable<EvaluateConfig['poisoning']>;

/** Points of the ROC curve of `scores` against the truly poisoned indices. */
export function rocPoints(scores: Float64Array, poisoned: readonly number[]): [number, number][] {
  const truth = new Uint8Array(scores.length);
  for (const i of poisoned) truth[i] = 1;
  const positives = poisoned.length;
  const negatives = scores.length - positives;
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]);
  const points: [number, number][] = [[0, 0]];
  let tp = 0;
  let fp = 0;
  for (let k = 0; k < order.length; k++) {
    if (truth[order[k]]) tp++;
    else fp++;
    // One point per distinct score (ties move together).
    if (k === order.length - 1 || scores[order[k + 1]] !== scores[order[k]]) {
      points.push([negatives === 0 ? 0 : fp / negatives, positives === 0 ? 0 : tp / positives]);
    }
  }
  // At most ~200 points: keep every k-th, and the last.
  const step = Math.max(1, Math.ceil(points.length / 200));
  return points.filter((_, i) => i % step === 0 || i === points.length - 1);
}

async function trainOn(
  data: Dataset,
  p: PoisoningConfig,
  ctx: EvalContext,
  onProgress?: (fraction: number) => void,
): Promise<TfjsClassifier> {
  const lm = buildArchitecture(p.train.arch, {
    inputShape: data.shape.slice(1),
    numClasses: data.numClasses,
    seed: p.train.seed,
  });
  await trainModel(
    lm,
    data,
    { epochs: p.train.epochs, batchSize: p.train.batchSize, lr: p.train.lr, seed: p.train.seed },
    {
      pool: ctx.pool,
      signal: ctx.signal,
      onBatch: (b) => onProgress?.((b.epoch - 1 + b.batch / b.numBatches) / p.train.epochs),
    },
  );
  return new TfjsClassifier(lm);
}

async function measure(
  model: TfjsClassifier,
  test: Dataset,
  manifest: PoisonManifest | null,
): Promise<Measured> {
  const cleanAccuracy = (await predictDataset(model, test)).accuracy;
  const asr =
    manifest?.trigger != null
      ? (await predictDataset(model, triggeredTestSet(test, manifest))).accuracy
      : null;
  return { cleanAccuracy, asr };
}

/** A copy of a classifier's LayersModel with the same weights (for defences that change it). */
async function copyOf(model: TfjsClassifier): Promise<TfjsClassifier> {
  const lm = model.layersModel!;
  const copy = (await tfl.models.modelFromJSON(lm.toJSON(null, false) as never)) as tfl.LayersModel;
  const w = lm.getWeights();
  copy.setWeights(w);
  return new TfjsClassifier(copy, { bounds: model.bounds });
}

/** The recipe's id: given, or the attack and its rate. */
export function recipeId(r: PoisoningConfig['recipes'][number]): string {
  if (r.id) return r.id;
  const rate = r.params.rate;
  return rate === undefined ? r.attack : `${r.attack} ${rate}`;
}

/** Runs the poisoning section of `ctx.config`, one cell per recipe (and one for the reference). */
export async function poisoningStage(ctx: EvalContext): Promise<PoisoningResults | null> {
  const p = ctx.config.poisoning;
  if (p === undefined) return null;
  const train = loadDataset(p.dataset, 'train', { seed: ctx.config.seed });
  const fullTest = loadDataset(p.dataset, 'test', { seed: ctx.config.seed });
  const test =
    p.testN === undefined ? fullTest : firstExamples(fullTest, p.testN, 'poisoning.testN');
  const clean = firstExamples(train, Math.min(p.cleanExamples, train.shape[0]), 'cleanExamples');
  let reference: TfjsClassifier | undefined;
  const referenceModel = async (progress?: (f: number) => void) => {
    reference ??= await trainOn(train, p, ctx, progress);
    return reference;
  };
  // Progress in percent: training the poisoned model, then each defence, an equal share each.
  const share = 100 / (1 + p.defenses.length);
  try {
    const refKey = {
      target: 'poisoning',
      stage: 'poisoning',
      attack: 'reference',
      norm: null,
      eps: null,
    };
    const referenceMeasured = await cell(
      ctx,
      refKey,
      'poisoning: clean reference',
      100,
      async (_s, progress) =>
        measure(await referenceModel((f) => progress(Math.round(100 * f), 100)), test, null),
    );
    const recipes: PoisonRecipeResult[] = [];
    for (const r of p.recipes) {
      const id = recipeId(r);
      const key = { target: 'poisoning', stage: 'poisoning', attack: id, norm: null, eps: null };
      recipes.push(
        await cell(ctx, key, `poisoning: ${id}`, 100, async (_seed, progress) => {
          const started = performance.now();
          const entry = findPoisonAttack(r.attack)!;
          const ref = entry.needs.includes('model') ? await referenceModel() : undefined;
          const result = await runPoison(
            r.attack,
            train,
            { ...r.params, seed: ctx.config.seed },
            { model: ref, test: entry.needs.includes('test-set') ? fullTest : undefined },
          );
          const manifest = result.manifest;
          const model = await trainOn(result.dataset, p, ctx, (f) =>
            progress(Math.round(f * share), 100),
          );
          try {
            const poisonedModel = await measure(model, test, manifest);
            const defenses: PoisonDefenseResult[] = [];
            for (const [k, d] of p.defenses.entries()) {
              const base = (k + 1) * share;
              try {
                defenses.push(
                  await runDefense(d, model, result.dataset, clean, test, manifest, p, ctx, (f) =>
                    progress(Math.round(base + f * share), 100),
                  ),
                );
              } catch (e) {
                // A defence that does not apply to the architecture is reported, not fatal.
                if (!(e instanceof ParryError && e.code === 'UNSUPPORTED')) throw e;
                ctx.notes.push(`poisoning ${id}: ${d.method} skipped: ${e.message}`);
                defenses.push({
                  method: d.method,
                  params: d.params,
                  skipped: e.message,
                  after: null,
                  seconds: 0,
                });
              }
            }
            const dpa = p.dpa
              ? await dpaSummary(result.dataset, test, p.dpa, ctx.config.seed, ctx)
              : undefined;
            return {
              ...(dpa ? { dpa } : {}),
              id,
              attack: r.attack,
              params: manifest.options,
              poisoned: result.poisonedIndices.length,
              examples: result.dataset.shape[0],
              labelsChanged: manifest.labelsChanged,
              targetClass: manifest.targetClass,
              poisonedModel,
              defenses,
              seconds: (performance.now() - started) / 1000,
            };
          } finally {
            model.dispose();
          }
        }),
      );
    }
    return {
      dataset: p.dataset,
      train: p.train,
      testExamples: test.shape[0],
      reference: referenceMeasured,
      recipes,
    };
  } finally {
    reference?.dispose();
  }
}

async function runDefense(
  d: PoisoningConfig['defenses'][number],
  model: TfjsClassifier,
  poisoned: Dataset,
  clean: Dataset,
  test: Dataset,
  manifest: PoisonManifest,
  p: PoisoningConfig,
  ctx: EvalContext,
  progress: (fraction: number) => void,
): Promise<PoisonDefenseResult> {
  const started = performance.now();
  const entry = [...INSPECTIONS, ...SCANS].find((e) => e.name === d.method);
  const params =
    entry && 'seed' in entry.schema.shape ? { ...d.params, seed: ctx.config.seed } : d.params;
  const done = (r: Omit<PoisonDefenseResult, 'seconds' | 'method'>): PoisonDefenseResult => ({
    method: d.method,
    ...r,
    seconds: (performance.now() - started) / 1000,
  });
  if (d.method === 'strip') {
    return done({
      params: d.params,
      input: await stripDefense(d.params, model, clean, test, manifest),
      after: null,
    });
  }
  if (INSPECTIONS.some((e) => e.name === d.method)) {
    const r = await runInspection(d.method, model, poisoned, params, {
      pool: ctx.pool,
      onProgress: (f) => progress(d.retrain ? f / 2 : f),
    });
    const s = scoreInspection(r, manifest.poisonedIndices);
    const detection = {
      flagged: r.flagged.length,
      precision: s.precision,
      recall: s.recall,
      falsePositiveRate: s.falsePositiveRate,
      auc: s.auc,
      roc: rocPoints(r.scores, manifest.poisonedIndices),
    };
    if (!d.retrain) return done({ params: d.params, detection, after: null });
    const flagged = new Set(r.flagged);
    const keep = Array.from({ length: poisoned.shape[0] }, (_, i) => i).filter(
      (i) => !flagged.has(i),
    );
    const retrained = await trainOn(selectExamples(poisoned, keep), p, ctx, (f) =>
      progress(0.5 + f / 2),
    );
    try {
      return done({ params: d.params, detection, after: await measure(retrained, test, manifest) });
    } finally {
      retrained.dispose();
    }
  }
  const copy = await copyOf(model);
  try {
    const r = await runScan(d.method, copy, clean, params, {
      pool: ctx.pool,
      onProgress: progress,
    });
    const nc = r.neuralCleanse;
    const fp = r.finePruning;
    const [h, w, ch] = copy.inputShape;
    return done({
      params: d.params,
      ...(nc
        ? {
            scan: {
              flaggedClasses: nc.flagged,
              perClass: nc.classes.map((c) => ({
                class: c.class,
                l1: c.l1,
                anomalyIndex: c.anomalyIndex,
                flagged: c.flagged,
              })),
              triggers: nc.triggers.map((t) =>
                pngDataUri(
                  imagePng(
                    Float32Array.from(t.pattern, (v, i) => t.mask[Math.floor(i / ch)] * v),
                    [h, w, ch],
                    copy.bounds,
                    3,
                  ),
                ),
              ),
            },
          }
        : {}),
      ...(fp
        ? { pruned: { layer: fp.layer, pruned: fp.pruned.length, channels: fp.channels } }
        : {}),
      after: r.modelChanged ? await measure(copy, test, manifest) : null,
    });
  } finally {
    copy.dispose();
  }
}

/**
 * STRIP at inference: fitted on the first half of the defender's clean examples, its threshold
 * set on the second half at the false-rejection rate `frr` (default 1%); then the share of the
 * triggered test inputs it lets through (false acceptance) and of the clean test inputs it
 * rejects. Null for recipes without a trigger.
 */
async function stripDefense(
  params: Record<string, unknown>,
  model: TfjsClassifier,
  clean: Dataset,
  test: Dataset,
  manifest: PoisonManifest,
): Promise<PoisonDefenseResult['input']> {
  if (manifest.trigger == null) return null;
  const frr = typeof params.frr === 'number' ? params.frr : 0.01;
  const samples = typeof params.samples === 'number' ? params.samples : 100;
  const seed = typeof params.seed === 'number' ? params.seed : 1;
  const half = clean.shape[0] >> 1;
  const tensor = (d: Dataset, from: number, to: number) =>
    tf.tensor(d.x.subarray(from * (d.x.length / d.shape[0]), to * (d.x.length / d.shape[0])), [
      to - from,
      ...d.shape.slice(1),
    ]);
  const det = new StripDetector({ samples, seed });
  const fitX = tensor(clean, 0, half);
  const calX = tensor(clean, half, clean.shape[0]);
  const triggered = triggeredTestSet(test, manifest);
  const trigX = tensor(triggered, 0, triggered.shape[0]);
  const testX = tensor(test, 0, test.shape[0]);
  try {
    await det.fit(model, fitX);
    det.calibrate(calX, frr);
    const accepted = det.detect(trigX).filter((f) => !f).length;
    const rejected = det.detect(testX).filter(Boolean).length;
    return {
      detector: 'strip',
      falseRejectionTarget: frr,
      falseAcceptance: accepted / triggered.shape[0],
      falseRejection: rejected / test.shape[0],
    };
  } finally {
    det.dispose();
    tf.dispose([fitX, calX, trigX, testX]);
  }
}

/** DPA trained on `data` (its k models freed after voting), certified on `test`. */
async function dpaSummary(
  data: Dataset,
  test: Dataset,
  config: NonNullable<PoisoningConfig['dpa']>,
  seed: number,
  ctx: EvalContext,
): Promise<DpaSummary> {
  const ensemble = await trainDpa(
    data,
    { ...config, seed },
    { pool: ctx.pool, signal: ctx.signal },
  );
  try {
    const r = certifyDpa(ensemble.models, test);
    return {
      k: config.k,
      accuracy: r.accuracy,
      medianCertified: r.medianCertified,
      curve: r.curve,
    };
  } finally {
    for (const m of ensemble.models) m.dispose();
  }
}
