/**
 * Runs one attack over a data set, batch by batch, and measures it: clean and robust accuracy,
 * success rate among the examples first classified correctly, perturbation sizes in the attack's
 * norm, and cost. Values are read once per batch (a boundary), never inside an attack's steps.
 */

import * as tf from '@tensorflow/tfjs-core';
import { preprocessAttacker } from '../adaptive/bpda.js';
import { type AttackEntry, type AttackParams, findAttack, runAttack } from '../attacks/registry.js';
import { disposeAttackResult } from '../attacks/result.js';
import { type Dataset, exampleSize } from '../data/index.js';
import { cachedPreprocessors } from '../defenses/preprocess/spec.js';
import { compiledModuleUrl } from '../engine/paths.js';
import type { WorkerPool } from '../engine/pool.js';
import { Rng } from '../engine/rng.js';
import { type ModuleTask, moduleTask, type TaskContext } from '../engine/tasks.js';
import { ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { cachedClassifier } from '../models/pool-tasks.js';
import { runBatchesInThread, runBatchesPooled } from './batches.js';
import { checkFiniteLogits } from './predictions.js';

export interface AttackEvaluation {
  n: number;
  cleanAccuracy: number;
  robustAccuracy: number;
  /** Among examples classified correctly before the attack: fraction the attack broke. */
  attackSuccessRate: number;
  /** Over successful adversarial examples, in the attack's norm (NaN when none). */
  meanPerturbation: number;
  medianPerturbation: number;
  maxPerturbation: number;
  /** Example-gradients: batch gradient evaluations times batch size, summed. */
  gradientEvaluations: number;
  queries: number;
  seconds: number;
  perExample: {
    label: number;
    target?: number;
    clean: number;
    adversarial: number;
    norm: number;
    /** Ensembles: the member that broke the example, 'clean', or null (robust). */
    brokenBy?: string | null;
  }[];
  /** The first `keepExamples` clean and adversarial inputs, for galleries. */
  examples: { x: Float32Array; xAdv: Float32Array; shape: number[] };
}

export interface EvaluateAttackOptions {
  batchSize?: number;
  keepExamples?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * What a pool's workers attack: the model in `modelDir`, optionally behind a preprocessing chain
 * (`parry defend --preprocess` syntax) that gradient attacks see through BPDA ('bpda', the
 * default) or through tfjs's own gradient ('none'). Each batch builds the defended model with
 * its own seed, as `evaluateAttack` does given a factory, so pooled and in-process runs agree.
 */
export interface PooledTarget {
  modelDir: string;
  preprocess?: string;
  adaptive?: 'bpda' | 'none';
}

/** One batch of `evaluateAttack`'s work, as plain arrays (it crosses to worker threads). */
export interface AttackBatchInput {
  x: Float32Array;
  /** `[batch, ...inputShape]`. */
  shape: number[];
  labels: Int32Array;
  /** Target classes, when targeted. */
  targets?: Int32Array;
  /** A registry name (`ATTACKS`). */
  attack: string;
  /** The batch's parameters, its own seed included. */
  params: AttackParams;
  /** Return the adversarial values of the first `keep` rows. */
  keep: number;
}

export interface AttackBatchOutput {
  clean: Int32Array;
  adversarial: Int32Array;
  norms: Float32Array;
  /** The first `keep` adversarial rows. */
  xAdv: Float32Array;
  /** Batch gradient evaluations and queries per example, as the attack reported them. */
  gradientEvaluations: number;
  queries: number;
  brokenBy?: (string | null)[];
}

/**
 * Attacks one batch and reads back predictions before and after, and the perturbation norms.
 * The attack is the registry's entry named `input.attack`, or `entry` (in-process callers with an
 * attack of their own). `progress` hears the attack's own progress through the batch, in [0, 1].
 */
export async function attackBatch(
  model: Classifier,
  input: AttackBatchInput,
  signal?: AbortSignal,
  entry?: AttackEntry,
  progress?: (fraction: number) => void,
): Promise<AttackBatchOutput> {
  const attack = entry ?? findAttack(input.attack);
  if (attack === undefined) {
    throw new ParryError('BAD_OPTION', `unknown attack '${input.attack}'`);
  }
  const m = input.shape[0];
  const x = tf.tensor(input.x, input.shape);
  const labels = tf.tensor1d(input.labels, 'int32');
  const targetLabels = input.targets ? tf.tensor1d(input.targets, 'int32') : undefined;
  try {
    const [clean, bad] = tf.tidy(() => {
      const logits = model.logits(x);
      const rowsBad = tf.logicalNot(tf.all(tf.isFinite(logits), 1));
      return [tf.argMax(logits, 1), tf.sum(tf.cast(rowsBad, 'int32'))];
    });
    const badRows = (await bad.data())[0];
    bad.dispose();
    if (badRows > 0) clean.dispose();
    checkFiniteLogits(badRows, m, `attack ${attack.name}`);
    const out = await runAttack(attack, model, x, labels, input.params, {
      targetLabels,
      signal,
      progress,
    });
    const [adv, norms] = [out.predictions, out.perturbationNorms];
    const per = input.x.length / Math.max(m, 1);
    const [c, a, d, xa] = await Promise.all([
      clean.data(),
      adv.data(),
      norms.data(),
      input.keep > 0 ? out.xAdv.data() : Promise.resolve(new Float32Array(0)),
    ]);
    clean.dispose();
    disposeAttackResult(out);
    return {
      clean: Int32Array.from(c),
      adversarial: Int32Array.from(a),
      norms: Float32Array.from(d),
      xAdv: Float32Array.from((xa as Float32Array).subarray(0, Math.min(input.keep, m) * per)),
      gradientEvaluations: out.gradientEvaluations,
      queries: out.queries,
      ...(out.brokenBy ? { brokenBy: out.brokenBy } : {}),
    };
  } finally {
    tf.dispose([x, labels, ...(targetLabels ? [targetLabels] : [])]);
  }
}

/**
 * The batches of an evaluation with their seeds and (targeted) target classes, all drawn from one
 * generator seeded by `params.seed` in batch order: in-process and pooled runs attack alike.
 */
function planBatches(
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  batchSize: number,
  keepExamples: number,
  numClasses: number,
): AttackBatchInput[] {
  const n = data.shape[0];
  const per = exampleSize(data);
  const rng = new Rng(params.seed);
  const plan: AttackBatchInput[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const labels = data.labels.subarray(start, end);
    // Targets: a uniformly random class other than the true one, from the seeded generator.
    const targets = params.targeted
      ? Int32Array.from(labels, (y) => (y + 1 + rng.int(numClasses - 1)) % numClasses)
      : undefined;
    plan.push({
      x: data.x.subarray(start * per, end * per),
      shape: [end - start, ...data.shape.slice(1)],
      labels: Int32Array.from(labels),
      ...(targets ? { targets } : {}),
      attack: attack.name,
      params: { ...params, seed: rng.nextUint32() },
      keep: Math.max(0, Math.min(keepExamples, end) - start),
    });
  }
  return plan;
}

/** Folds per-batch outputs, in batch order, into the evaluation. */
function assemble(
  plan: AttackBatchInput[],
  outputs: AttackBatchOutput[],
  keep: number,
  seconds: number,
): AttackEvaluation {
  const n = plan.reduce((a, b) => a + b.shape[0], 0);
  const perExample: AttackEvaluation['perExample'] = [];
  const shape = plan.length > 0 ? plan[0].shape.slice(1) : [];
  const per = shape.reduce((a, b) => a * b, 1);
  const examples = {
    x: new Float32Array(keep * per),
    xAdv: new Float32Array(keep * per),
    shape: [keep, ...shape],
  };
  let gradientEvaluations = 0;
  let queries = 0;
  let offset = 0;
  plan.forEach((batch, b) => {
    const out = outputs[b];
    const m = batch.shape[0];
    gradientEvaluations += out.gradientEvaluations * m;
    queries += out.queries * m;
    if (batch.keep > 0) {
      examples.x.set(batch.x.subarray(0, batch.keep * per), offset * per);
      examples.xAdv.set(out.xAdv, offset * per);
    }
    for (let i = 0; i < m; i++) {
      perExample.push({
        label: batch.labels[i],
        ...(batch.targets ? { target: batch.targets[i] } : {}),
        clean: out.clean[i],
        adversarial: out.adversarial[i],
        norm: out.norms[i],
        ...(out.brokenBy ? { brokenBy: out.brokenBy[i] } : {}),
      });
    }
    offset += m;
  });
  return {
    n,
    ...summarize(perExample, plan[0]?.params.targeted ?? false),
    gradientEvaluations: gradientEvaluations,
    queries,
    seconds,
    perExample,
    examples,
  };
}

/**
 * Attacks `data` batch by batch. `model` is the classifier, or a factory called once per batch
 * with the batch's seed (a randomised defense then draws the same noise in-process as pooled).
 */
export async function evaluateAttack(
  model: Classifier | ((batchSeed: number) => Classifier),
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  opts: EvaluateAttackOptions = {},
): Promise<AttackEvaluation> {
  const modelFor = typeof model === 'function' ? model : () => model;
  const { numClasses } = modelFor(params.seed);
  return evaluateBatches(data, attack, params, numClasses, opts, (plan) =>
    runBatchesInThread(plan, data.shape[0], opts, (batch, progress) =>
      attackBatch(modelFor(batch.params.seed), batch, opts.signal, attack, progress),
    ),
  );
}

/**
 * `evaluateAttack` with the batches spread over a worker pool; each worker loads the model from
 * the target's directory (and builds its preprocessing chain) once. Batch seeds and targets are
 * drawn as in-process, so results are the same as `evaluateAttack` with the matching classifier
 * (or, for a preprocessing defense, the factory `seed => preprocessAttacker(…, seed)`).
 */
export async function evaluateAttackPooled(
  pool: WorkerPool,
  target: string | PooledTarget,
  numClasses: number,
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  opts: EvaluateAttackOptions = {},
): Promise<AttackEvaluation> {
  const t = typeof target === 'string' ? { modelDir: target } : target;
  return evaluateBatches(data, attack, params, numClasses, opts, (plan) =>
    runBatchesPooled(pool, attackBatchTask(), plan, t, data.shape[0], opts),
  );
}

/** Plans the batches, has `run` attack them (in this thread or on a pool), and assembles. */
async function evaluateBatches(
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  numClasses: number,
  opts: EvaluateAttackOptions,
  run: (plan: AttackBatchInput[]) => Promise<AttackBatchOutput[]>,
): Promise<AttackEvaluation> {
  const started = performance.now();
  const keep = Math.min(opts.keepExamples ?? 0, data.shape[0]);
  const plan = planBatches(data, attack, params, opts.batchSize ?? 128, keep, numClasses);
  return assemble(plan, await run(plan), keep, (performance.now() - started) / 1000);
}

function summarize(rows: AttackEvaluation['perExample'], targeted: boolean) {
  const correct = rows.filter((r) => r.clean === r.label);
  const broken = correct.filter((r) =>
    targeted ? r.adversarial === r.target : r.adversarial !== r.label,
  );
  const robust = correct.filter((r) => r.adversarial === r.label).length;
  const norms = broken.map((r) => r.norm).sort((a, b) => a - b);
  const n = rows.length;
  return {
    cleanAccuracy: correct.length / n,
    robustAccuracy: robust / n,
    attackSuccessRate: correct.length === 0 ? Number.NaN : broken.length / correct.length,
    meanPerturbation:
      norms.length === 0 ? Number.NaN : norms.reduce((s, v) => s + v, 0) / norms.length,
    medianPerturbation: norms.length === 0 ? Number.NaN : median(norms),
    maxPerturbation: norms.length === 0 ? Number.NaN : norms[norms.length - 1],
  };
}

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Pool task: one batch of an attack evaluation on the model in `modelDir`, behind its
 * preprocessing chain when the input names one (built once per worker; the defended model is
 * seeded per batch).
 */
export async function attackBatchJob(
  input: AttackBatchInput & PooledTarget,
  ctx: TaskContext,
): Promise<AttackBatchOutput> {
  const base = await cachedClassifier(input.modelDir, ctx);
  const run = (model: Classifier) => attackBatch(model, input, undefined, undefined, ctx.progress);
  if (input.preprocess === undefined) return run(base);
  const chain = await cachedPreprocessors(input.preprocess, ctx.cache);
  return run(preprocessAttacker(base, chain, input.adaptive ?? 'bpda', input.params.seed));
}

/** `attackBatchJob` as a task for `WorkerPool.map`. */
export function attackBatchTask(): ModuleTask<AttackBatchInput & PooledTarget, AttackBatchOutput> {
  return moduleTask(compiledModuleUrl(import.meta.url), 'attackBatchJob');
}

/** The headline numbers of an evaluation, as `parry attack` reports them (seconds rounded). */
export function attackSummary(r: AttackEvaluation, minimumNorm: boolean) {
  const brokenBy = brokenByCounts(r);
  return {
    clean_accuracy: r.cleanAccuracy,
    robust_accuracy: r.robustAccuracy,
    attack_success_rate: r.attackSuccessRate,
    mean_perturbation: r.meanPerturbation,
    max_perturbation: r.maxPerturbation,
    ...(minimumNorm ? { median_perturbation: r.medianPerturbation } : {}),
    ...(brokenBy ? { broken_by: brokenBy } : {}),
    gradient_evaluations: r.gradientEvaluations,
    queries: r.queries,
    seconds: Math.round(r.seconds * 1000) / 1000,
  };
}

/** uap: the fraction of examples whose prediction the perturbation changed. */
export function foolingRate(r: AttackEvaluation): number {
  return r.perExample.filter((e) => e.clean !== e.adversarial).length / r.n;
}

/** Ensembles: how many examples each member broke (`robust`: none did; `clean`: misclassified). */
export function brokenByCounts(r: AttackEvaluation): Record<string, number> | undefined {
  if (!r.perExample.some((e) => e.brokenBy !== undefined)) return undefined;
  const counts: Record<string, number> = {};
  for (const e of r.perExample) {
    const key = e.brokenBy ?? 'robust';
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}
