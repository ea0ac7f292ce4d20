/**
 * A membership-inference evaluation from one data set: a pool of candidates drawn from its
 * training split, a target and K reference models trained on balanced random halves of the pool
 * (src/attacks/privacy/reference-models.ts), population samples no model trained on (RMIA's z),
 * then every chosen attack — on the raw outputs and again behind each output defence — and the
 * label-only signals, all judged against the target's half.
 *
 * Honesty rules: thresholds and fits come from the reference models only (the attacks never see
 * the target's membership); behind an output defence the attacker applies the same defence to
 * its own reference models (it knows the service's output policy), the strongest fitting attack;
 * a defended answer reaches the score attacks as log-probabilities, with exact zeros floored at
 * 1e-30 so that a labels-only answer is a (very confident) score and not an error.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import { decisionClassifierFrom, queryClassifierFrom } from '../attacks/evasion/black-box.js';
import {
  classMeans,
  type InversionScore,
  miFace,
  miFaceSchema,
  scoreInversions,
} from '../attacks/privacy/inversion/index.js';
import { augmentationSignal, boundarySignal, noiseSignal } from '../attacks/privacy/label-only.js';
import {
  calibrateThresholds,
  type MembershipInput,
  type MembershipMetrics,
  membershipMetrics,
  runMembership,
} from '../attacks/privacy/membership/index.js';
import {
  membersOf,
  queriesOf,
  queryLogits,
  trainPopulation,
} from '../attacks/privacy/reference-models.js';
import { type StealingResult, stealingCurve } from '../attacks/privacy/stealing/index.js';
import { type Dataset, selectExamples, shuffleDataset } from '../data/dataset.js';
import { imagePng, pngDataUri } from '../data/image-encoding.js';
import { firstExamples, loadDataset } from '../data/index.js';
import {
  buildOutputDefenses,
  defendClassifier,
  type OutputDefense,
} from '../defenses/output/index.js';
import type { WorkerPool } from '../engine/pool.js';
import { Rng } from '../engine/rng.js';
import { ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { loadClassifier } from '../models/index.js';
import { TfjsClassifier } from '../models/tfjs-classifier.js';
import { parseWith } from '../options.js';
import { targetId } from './config.js';
import { cell, type EvalContext } from './context.js';
import { type PrivacyConfig, privacySchema } from './privacy-config.js';
import { populationRecipe, trainMembersOn } from './privacy-population.js';

/** An attack's result without its per-candidate scores (kept out of results files). */
export interface PrivacyAttackRow {
  attack: string;
  options: Record<string, unknown>;
  metrics: MembershipMetrics;
  warnings: string[];
  seconds: number;
}

export interface PrivacyResults {
  config: PrivacyConfig;
  dataset: string;
  pool: number;
  population: number;
  queries: number;
  target: {
    trainAccuracy: number;
    testAccuracy: number;
    members: number;
    trainSeconds: number;
    /** What the target's training recipe recorded (DP-SGD: ε at δ, steps); {} when plain. */
    training: Record<string, unknown>;
  };
  referenceSeconds: number[];
  /** One block per entry of `config.outputs`, in order. */
  outputs: { output: string; attacks: PrivacyAttackRow[]; queryLogitsSeconds: number }[];
  labelOnly: (PrivacyAttackRow & { candidates: number; references: number; queries: number })[];
  seconds: number;
}

export interface PrivacyProgress {
  stage: 'train' | 'query' | 'attack' | 'label-only';
  done: number;
  total: number;
}

/** Floor of a defended probability before its log (a labels-only answer has exact zeros). */
const PROB_FLOOR = 1e-30;

function accuracyOn(model: Classifier, data: Dataset): number {
  const logits = queryLogits(model, data, queriesOf('none'))[0];
  const k = model.numClasses;
  let hits = 0;
  for (let i = 0; i < data.shape[0]; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + best]) best = c;
    if (best === data.labels[i]) hits++;
  }
  return hits / data.shape[0];
}

/**
 * Every query's logits behind `defenses`: softmax, the defences in order, log of the answer
 * (floored). With no defence the raw logits are returned as they are.
 */
export function defendLogits(
  raw: Float32Array[],
  k: number,
  defenses: readonly OutputDefense[],
): Float32Array[] {
  if (defenses.length === 0) return raw;
  return raw.map((q) => {
    const out = tf.tidy(() => {
      let p = tf.softmax(tf.tensor2d(q, [q.length / k, k])) as tf.Tensor2D;
      for (const d of defenses) p = d.apply(p);
      return tf.log(tf.maximum(p, PROB_FLOOR));
    });
    const values = out.dataSync() as Float32Array;
    out.dispose();
    return values;
  });
}

function checkData(train: Dataset, test: Dataset, c: PrivacyConfig): void {
  const need = c.pool + c.population;
  if (train.shape[0] < need) {
    throw new ParryError(
      'BAD_INPUT',
      `privacy: pool ${c.pool} + population ${c.population} = ${need} examples, but '${train.name}' has ${train.shape[0]}`,
    );
  }
  if (!tf.util.arraysEqual(train.shape.slice(1), test.shape.slice(1))) {
    throw new ParryError('BAD_INPUT', 'privacy: training and test examples differ in shape');
  }
  const needsPopulation = c.attacks.some((a) => a.name === 'rmia');
  if (needsPopulation && c.population === 0) {
    throw new ParryError('BAD_OPTION', 'privacy: rmia needs population samples (population > 0)');
  }
}

/**
 * Runs the evaluation `config` on the training split `train` (candidates and population) and
 * `test` (the target's test accuracy). Frees every model it trains.
 */
export async function privacyEvaluation(
  train: Dataset,
  test: Dataset,
  config: z.input<typeof privacySchema> = {},
  ctx: {
    pool?: WorkerPool;
    onProgress?: (p: PrivacyProgress) => void;
    signal?: AbortSignal;
  } = {},
): Promise<PrivacyResults> {
  const c = parseWith('privacy', privacySchema, config);
  checkData(train, test, c);
  // Every output chain is parsed before any training.
  const chains = c.outputs.map((spec) => (spec === 'none' ? [] : buildOutputDefenses(spec)));
  const recipe = populationRecipe(c.training, c.models.batchSize);
  const t0 = performance.now();
  const shuffled = shuffleDataset(train, new Rng(c.seed));
  const pool = selectExamples(
    shuffled,
    Array.from({ length: c.pool }, (_, i) => i),
    `${train.name} pool`,
  );
  const population = selectExamples(
    shuffled,
    Array.from({ length: c.population }, (_, i) => c.pool + i),
    `${train.name} population`,
  );
  const total = c.models.referenceModels + 1;
  // With an executor, one job per model (K at a time); else one after the other in this thread.
  // Either way each model trains in one thread from its seed, so the results are the same.
  const onModel = (done: number) =>
    ctx.onProgress?.({ stage: 'train', done: Math.floor(done * 10) / 10, total });
  const pop = await trainPopulation(pool, c.models, {
    signal: ctx.signal,
    recipe,
    onModel,
    ...(ctx.pool
      ? {
          trainMembers: trainMembersOn(ctx.pool, c.training, {
            signal: ctx.signal,
            onProgress: onModel,
          }),
        }
      : {}),
  });
  try {
    const classifiers = pop.models.map((m) => new TfjsClassifier(m));
    const k = classifiers[0].numClasses;
    const targetMembership = pop.membership[0];
    const members = membersOf(targetMembership);
    const target = {
      trainAccuracy: accuracyOn(classifiers[0], selectExamples(pool, members, 'target members')),
      testAccuracy: accuracyOn(classifiers[0], test),
      members: members.length,
      trainSeconds: pop.seconds[0],
      training: pop.records[0],
    };
    const queries = queriesOf(c.queries);
    const tq = performance.now();
    const rawPool: Float32Array[][] = [];
    const rawPopulation: Float32Array[][] = [];
    for (const [j, m] of classifiers.entries()) {
      rawPool.push(queryLogits(m, pool, queries));
      if (c.population > 0) rawPopulation.push(queryLogits(m, population, queries));
      ctx.onProgress?.({ stage: 'query', done: j + 1, total });
    }
    const queryLogitsSeconds = (performance.now() - tq) / 1000;

    const outputs: PrivacyResults['outputs'] = [];
    let attacksDone = 0;
    const attacksTotal = chains.length * c.attacks.length;
    for (const [oi, chain] of chains.entries()) {
      const poolLogits = rawPool.map((q) => defendLogits(q, k, chain));
      const popLogits = rawPopulation.map((q) => defendLogits(q, k, chain));
      const input: MembershipInput = {
        numClasses: k,
        labels: pool.labels,
        target: poolLogits[0],
        references: poolLogits.slice(1),
        referenceMembership: pop.membership.slice(1),
        ...(c.population > 0
          ? {
              population: {
                labels: population.labels,
                target: popLogits[0],
                references: popLogits.slice(1),
              },
            }
          : {}),
      };
      const rows: PrivacyAttackRow[] = [];
      for (const a of c.attacks) {
        const r = runMembership(a.name, a.params, input, targetMembership);
        rows.push({
          attack: r.attack,
          options: r.options,
          metrics: r.metrics,
          warnings: r.warnings,
          seconds: r.seconds,
        });
        ctx.onProgress?.({ stage: 'attack', done: ++attacksDone, total: attacksTotal });
      }
      outputs.push({ output: c.outputs[oi], attacks: rows, queryLogitsSeconds });
    }

    const labelOnly: PrivacyResults['labelOnly'] = [];
    for (const [li, spec] of c.labelOnly.entries()) {
      if (spec.references > c.models.referenceModels) {
        throw new ParryError(
          'BAD_OPTION',
          `privacy: labelOnly[${li}].references is ${spec.references}, but only ${c.models.referenceModels} reference models are trained`,
        );
      }
      const n = Math.min(spec.n ?? c.pool, c.pool);
      const candidates = selectExamples(
        pool,
        Array.from({ length: n }, (_, i) => i),
        `${pool.name} (first ${n})`,
      );
      const signalOf = async (model: Classifier) => {
        const q = decisionClassifierFrom(model);
        const values =
          spec.signal === 'augmentation'
            ? await augmentationSignal(q, candidates, spec.params)
            : spec.signal === 'noise'
              ? await noiseSignal(q, candidates, spec.params)
              : await boundarySignal(q, candidates, spec.params);
        return { values, queries: q.queries };
      };
      const ts = performance.now();
      const refScores: Float64Array[] = [];
      for (let j = 1; j <= spec.references; j++)
        refScores.push((await signalOf(classifiers[j])).values);
      const thresholds = calibrateThresholds({
        scores: refScores,
        membership: pop.membership.slice(1, spec.references + 1).map((row) => row.subarray(0, n)),
      });
      const targetSignal = await signalOf(classifiers[0]);
      const membership = targetMembership.subarray(0, n);
      const decisions = Uint8Array.from(targetSignal.values, (v) =>
        v >= thresholds.global ? 1 : 0,
      );
      labelOnly.push({
        attack: `label-only-${spec.signal}`,
        options: { ...spec.params, references: spec.references },
        metrics: membershipMetrics(targetSignal.values, membership, decisions),
        warnings: thresholds.warnings,
        seconds: (performance.now() - ts) / 1000,
        candidates: n,
        references: spec.references,
        queries: targetSignal.queries / n,
      });
      ctx.onProgress?.({ stage: 'label-only', done: li + 1, total: c.labelOnly.length });
    }
    return {
      config: c,
      dataset: train.name,
      pool: c.pool,
      population: c.population,
      queries: queries.length,
      target,
      referenceSeconds: pop.seconds.slice(1),
      outputs,
      labelOnly,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    for (const m of pop.models) m.dispose();
  }
}

/** One model's stealing curve behind one output. */
export interface StealingRow {
  model: string;
  method: string;
  output: string;
  curve: StealingResult[];
}

/** One model's MI-Face reconstructions, scored, with the class means beside them. */
export interface InversionRow {
  model: string;
  classes: number[];
  scores: InversionScore[];
  /** PNG data URIs: the reconstruction and the class mean of each class, in `classes` order. */
  images: string[];
  means: string[];
  steps: number[];
  options: Record<string, unknown>;
  seconds: number;
}

/** The evaluation's privacy section. */
export interface PrivacySectionResults {
  dataset: string;
  membership: PrivacyResults | null;
  stealing: StealingRow[];
  inversion: InversionRow[];
}

type SectionConfig = NonNullable<EvalContext['config']['privacy']>;

/**
 * The evaluation's privacy section (`config.privacy`): membership inference on a target trained
 * for it (one cell), then stealing and MI-Face against each model of the config (one cell per
 * model × method × output, and per model), the config's seed throughout.
 */
/**
 * The config's privacy section. `models`, when given (the job queue), trains the membership
 * evaluation's population, one job per model; everything else runs on `ctx.pool`.
 */
export async function privacyStage(
  ctx: EvalContext,
  models?: WorkerPool,
): Promise<PrivacySectionResults | null> {
  const p = ctx.config.privacy;
  if (p === undefined) return null;
  const train = loadDataset(p.dataset, 'train', { seed: ctx.config.seed });
  const test = loadDataset(p.dataset, 'test', { seed: ctx.config.seed });
  const membership = p.membership
    ? await membershipCell(ctx, p.membership, train, test, models ?? ctx.pool)
    : null;
  const stealing: StealingRow[] = [];
  const inversion: InversionRow[] = [];
  for (const m of ctx.config.models) {
    if (!p.stealing && !p.inversion) break;
    const id = targetId(m);
    const model = await loadClassifier(m.path);
    try {
      if (p.stealing) stealing.push(...(await stealingCells(ctx, p, id, model, train, test)));
      if (p.inversion) inversion.push(await inversionCell(ctx, p.inversion, id, model, train));
    } finally {
      model.dispose();
    }
  }
  return { dataset: p.dataset, membership, stealing, inversion };
}

async function membershipCell(
  ctx: EvalContext,
  config: NonNullable<SectionConfig['membership']>,
  train: Dataset,
  test: Dataset,
  models: WorkerPool | undefined,
): Promise<PrivacyResults> {
  const key = { target: 'privacy', stage: 'privacy', attack: 'membership', norm: null, eps: null };
  return cell(ctx, key, 'privacy: membership inference', 100, async (_seed, progress) => {
    // Progress: training is most of the work; queries and attacks share the rest.
    const weights = { train: 80, query: 5, attack: 10, 'label-only': 5 } as const;
    const offsets = { train: 0, query: 80, attack: 85, 'label-only': 95 } as const;
    const r = await privacyEvaluation(
      train,
      test,
      { ...config, seed: ctx.config.seed },
      {
        pool: models,
        signal: ctx.signal,
        onProgress: (s) =>
          progress(Math.round(offsets[s.stage] + (weights[s.stage] * s.done) / s.total), 100),
      },
    );
    return { ...r, dataset: train.name };
  });
}

async function stealingCells(
  ctx: EvalContext,
  p: SectionConfig,
  id: string,
  model: TfjsClassifier,
  train: Dataset,
  test: Dataset,
): Promise<StealingRow[]> {
  const s = p.stealing!;
  const pool =
    s.pool === undefined ? train : loadDataset(s.pool, 'train', { seed: ctx.config.seed });
  const scored = firstExamples(test, Math.min(s.testN, test.shape[0]), 'privacy.stealing.testN');
  const rows: StealingRow[] = [];
  for (const method of s.methods) {
    for (const output of s.outputs) {
      const key = {
        target: id,
        stage: 'privacy',
        attack: `stealing ${method.name} ${output}`,
        norm: null,
        eps: null,
      };
      const total = s.budgets.reduce((a, b) => a + b, 0);
      const curve = await cell(
        ctx,
        key,
        `${id}: stealing (${method.name}, output ${output})`,
        total,
        async (_seed, progress) => {
          const victim =
            output === 'none'
              ? queryClassifierFrom(model)
              : defendClassifier(model, buildOutputDefenses(output));
          let before = 0;
          return stealingCurve(
            method.name,
            victim,
            { pool, test: scored },
            s.budgets,
            { ...method.params, seed: ctx.config.seed },
            {
              signal: ctx.signal,
              transfer: { eps: s.transferEps, steps: s.transferSteps, seed: ctx.config.seed },
              onProgress: (used) => progress(before + used, total),
              onPoint: (r) => {
                before += r.budget;
              },
            },
          );
        },
      );
      rows.push({ model: id, method: method.name, output, curve });
    }
  }
  return rows;
}

async function inversionCell(
  ctx: EvalContext,
  config: NonNullable<SectionConfig['inversion']>,
  id: string,
  model: TfjsClassifier,
  train: Dataset,
): Promise<InversionRow> {
  const key = { target: id, stage: 'privacy', attack: 'mi-face', norm: null, eps: null };
  const classes = config.classes ?? Array.from({ length: model.numClasses }, (_, k) => k);
  const options = parseWith('miFace', miFaceSchema, config.params);
  return cell(ctx, key, `${id}: MI-Face inversion`, options.steps, async (_seed, progress) => {
    const started = performance.now();
    const r = await miFace(model, classes, options, { signal: ctx.signal, onProgress: progress });
    try {
      const data = firstExamples(
        train,
        Math.min(config.meanExamples, train.shape[0]),
        'meanExamples',
      );
      const means = classMeans(data, model.numClasses);
      const scores = await scoreInversions(model, r.x, classes, means);
      const values = await r.x.data();
      const shape = model.inputShape;
      const d = values.length / classes.length;
      const png = (v: ArrayLike<number>) => pngDataUri(imagePng(v, shape, model.bounds, 2));
      return {
        model: id,
        classes,
        scores,
        images: classes.map((_, i) => png(values.subarray(i * d, (i + 1) * d))),
        means: classes.map((k) => {
          const mean = means.means[k];
          return mean === null ? '' : png(mean);
        }),
        steps: r.steps,
        options: options as unknown as Record<string, unknown>,
        seconds: (performance.now() - started) / 1000,
      };
    } finally {
      r.x.dispose();
    }
  });
}
