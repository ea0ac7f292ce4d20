/**
 * Evaluates a preprocessing defense honestly: clean accuracy without and with it (its cost), and
 * robust accuracy of the defended model under a non-adaptive attack (gradients as tfjs gives them
 * through the defense) and under adaptive ones (BPDA, EOT), side by side on the same examples.
 * Adversarial examples are always judged by the defended model itself. An example counts as
 * robust when the defended model classifies it correctly both clean and attacked.
 *
 * Batches are independent: each builds its defended model and attackers from its own seed (drawn
 * from `params.seed` in batch order), so a run over a worker pool gives the same numbers as one
 * in this thread.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BpdaClassifier } from '../adaptive/bpda.js';
import { EotClassifier } from '../adaptive/eot.js';
import {
  type AttackEntry,
  type AttackParams,
  craftAttack,
  findAttack,
} from '../attacks/registry.js';
import { type Dataset, exampleSize } from '../data/index.js';
import { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import type { Preprocessor } from '../defenses/preprocess/preprocessor.js';
import { cachedPreprocessors } from '../defenses/preprocess/spec.js';
import { compiledModuleUrl } from '../engine/paths.js';
import type { WorkerPool } from '../engine/pool.js';
import { Rng } from '../engine/rng.js';
import { type ModuleTask, moduleTask, type TaskContext } from '../engine/tasks.js';
import { ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { cachedClassifier } from '../models/pool-tasks.js';
import { runBatchesInThread, runBatchesPooled } from './batches.js';

export interface DefenseEvaluation {
  n: number;
  cleanAccuracyUndefended: number;
  cleanAccuracyDefended: number;
  /** Robust accuracy of the defended model per attacker (e.g. 'non-adaptive', 'bpda'). */
  robustAccuracy: Record<string, number>;
  /** Robust under every attacker at once (per-example worst case). */
  robustAccuracyWorstCase: number;
  gradientEvaluations: Record<string, number>;
  seconds: number;
}

/** Which attackers run beside the non-adaptive one. */
export interface DefenseAttackers {
  adaptive: 'bpda' | 'eot' | 'none';
  /** eot: random draws averaged per gradient. */
  eotSamples?: number;
}

/** The defended model, and by name the classifiers the attack differentiates, from `seed`. */
export interface DefenseSetup {
  defended: DefendedClassifier;
  attackers: Record<string, Classifier>;
}

/**
 * `base` behind `preprocessors`, attacked through its own gradient ('non-adaptive') and, as
 * `kind.adaptive` says, through BPDA or EOT; everything seeded by `seed`.
 */
export function defenseSetup(
  base: Classifier,
  preprocessors: readonly Preprocessor[],
  kind: DefenseAttackers,
  seed: number,
): DefenseSetup {
  const defended = new DefendedClassifier(base, preprocessors, { seed });
  const attackers: Record<string, Classifier> = { 'non-adaptive': defended };
  if (kind.adaptive === 'bpda') attackers.bpda = new BpdaClassifier(defended, { seed });
  if (kind.adaptive === 'eot') {
    attackers.eot = new EotClassifier(defended, { samples: kind.eotSamples ?? 8, seed });
  }
  return { defended, attackers };
}

/** One batch of `evaluateDefense`'s work, as plain arrays (it crosses to worker threads). */
export interface DefenseBatchInput {
  x: Float32Array;
  shape: number[];
  labels: Int32Array;
  /** A registry name (`ATTACKS`). */
  attack: string;
  /** The batch's parameters, its own seed included. */
  params: AttackParams;
}

export interface DefenseBatchOutput {
  /** Per example: the undefended and the defended model's clean predictions. */
  base: Int32Array;
  clean: Int32Array;
  /** Per attacker: the defended model's predictions on that attacker's adversarial examples. */
  adversarial: Record<string, Int32Array>;
  /** Per attacker: batch gradient evaluations per example, as the attack reported them. */
  gradientEvaluations: Record<string, number>;
}

/** What a pool's workers need to rebuild the setup: the model directory and the chain's spec. */
export interface PooledDefense extends DefenseAttackers {
  modelDir: string;
  /** `parry defend --preprocess` syntax. */
  preprocess: string;
}

/** Attacks one batch with every attacker of `setup` and reads back the predictions. */
export async function defenseBatch(
  setup: DefenseSetup,
  input: DefenseBatchInput,
  entry?: AttackEntry,
  progress?: (fraction: number) => void,
): Promise<DefenseBatchOutput> {
  const attack = entry ?? findAttack(input.attack);
  if (attack === undefined) throw new ParryError('BAD_OPTION', `unknown attack '${input.attack}'`);
  const { defended, attackers } = setup;
  const names = Object.keys(attackers);
  const x = tf.tensor(input.x, input.shape);
  const labels = tf.tensor1d(input.labels, 'int32');
  const predict = async (model: Classifier, v: tf.Tensor) => {
    const p = tf.tidy(() => tf.argMax(model.logits(v), 1));
    const out = Int32Array.from(await p.data());
    p.dispose();
    return out;
  };
  try {
    const base = await predict(defended.base, x);
    const clean = await predict(defended, x);
    const adversarial: Record<string, Int32Array> = {};
    const gradientEvaluations: Record<string, number> = {};
    for (const [k, name] of names.entries()) {
      const onStep = progress && ((f: number) => progress((k + f) / names.length));
      const out = await craftAttack(attack, attackers[name], x, labels, input.params, {
        progress: onStep,
      });
      try {
        adversarial[name] = await predict(defended, out.xAdv);
      } finally {
        out.xAdv.dispose();
      }
      gradientEvaluations[name] = out.gradientEvaluations;
    }
    return { base, clean, adversarial, gradientEvaluations };
  } finally {
    tf.dispose([x, labels]);
  }
}

/** The batches of an evaluation, each with its seed drawn from `params.seed` in batch order. */
function planBatches(
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  batchSize: number,
): DefenseBatchInput[] {
  const n = data.shape[0];
  const per = exampleSize(data);
  const rng = new Rng(params.seed);
  const plan: DefenseBatchInput[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    plan.push({
      x: data.x.subarray(start * per, end * per),
      shape: [end - start, ...data.shape.slice(1)],
      labels: Int32Array.from(data.labels.subarray(start, end)),
      attack: attack.name,
      params: { ...params, seed: rng.nextUint32() },
    });
  }
  return plan;
}

function assemble(
  plan: DefenseBatchInput[],
  outputs: DefenseBatchOutput[],
  seconds: number,
): DefenseEvaluation {
  const n = plan.reduce((a, b) => a + b.shape[0], 0);
  const names = outputs.length > 0 ? Object.keys(outputs[0].adversarial) : [];
  const robust: Record<string, number> = Object.fromEntries(names.map((k) => [k, 0]));
  const grads: Record<string, number> = Object.fromEntries(names.map((k) => [k, 0]));
  let cleanBase = 0;
  let cleanDefended = 0;
  let worst = 0;
  plan.forEach((batch, b) => {
    const out = outputs[b];
    const y = batch.labels;
    for (const name of names) grads[name] += out.gradientEvaluations[name] * y.length;
    for (let i = 0; i < y.length; i++) {
      if (out.base[i] === y[i]) cleanBase++;
      if (out.clean[i] !== y[i]) continue;
      cleanDefended++;
      let survives = true;
      for (const name of names) {
        if (out.adversarial[name][i] === y[i]) robust[name]++;
        else survives = false;
      }
      if (survives) worst++;
    }
  });
  return {
    n,
    cleanAccuracyUndefended: cleanBase / n,
    cleanAccuracyDefended: cleanDefended / n,
    robustAccuracy: Object.fromEntries(names.map((k) => [k, robust[k] / n])),
    robustAccuracyWorstCase: worst / n,
    gradientEvaluations: grads,
    seconds,
  };
}

export interface EvaluateDefenseOptions {
  batchSize?: number;
  /** Whole examples done (finished batches plus the running batch's finished share). */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Evaluates the defense `setup(seed)` builds, batch by batch in this thread; `setup` is called
 * once per batch with the batch's seed.
 */
export async function evaluateDefense(
  setup: (seed: number) => DefenseSetup,
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  opts: EvaluateDefenseOptions = {},
): Promise<DefenseEvaluation> {
  return evaluateBatches(data, attack, params, opts, (plan) =>
    runBatchesInThread(plan, data.shape[0], opts, (batch, progress) =>
      defenseBatch(setup(batch.params.seed), batch, attack, progress),
    ),
  );
}

/**
 * `evaluateDefense` with the batches spread over a worker pool: each worker loads the model and
 * builds the chain once, then the setup per batch from the batch's seed, as in this thread.
 */
export async function evaluateDefensePooled(
  pool: WorkerPool,
  target: PooledDefense,
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  opts: EvaluateDefenseOptions = {},
): Promise<DefenseEvaluation> {
  return evaluateBatches(data, attack, params, opts, (plan) =>
    runBatchesPooled(pool, defenseBatchTask(), plan, target, data.shape[0], opts),
  );
}

/** Plans the batches, has `run` evaluate them (in this thread or on a pool), and assembles. */
async function evaluateBatches(
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  opts: EvaluateDefenseOptions,
  run: (plan: DefenseBatchInput[]) => Promise<DefenseBatchOutput[]>,
): Promise<DefenseEvaluation> {
  const started = performance.now();
  const plan = planBatches(data, attack, params, opts.batchSize ?? 128);
  return assemble(plan, await run(plan), (performance.now() - started) / 1000);
}

/** Pool task: one batch of a preprocessing-defense evaluation on `modelDir`'s model. */
export async function defenseBatchJob(
  input: DefenseBatchInput & PooledDefense,
  ctx: TaskContext,
): Promise<DefenseBatchOutput> {
  const base = await cachedClassifier(input.modelDir, ctx);
  const chain = await cachedPreprocessors(input.preprocess, ctx.cache);
  const setup = defenseSetup(base, chain, input, input.params.seed);
  return defenseBatch(setup, input, undefined, ctx.progress);
}

/** `defenseBatchJob` as a task for `WorkerPool.map`. */
export function defenseBatchTask(): ModuleTask<
  DefenseBatchInput & PooledDefense,
  DefenseBatchOutput
> {
  return moduleTask(compiledModuleUrl(import.meta.url), 'defenseBatchJob');
}

/** A finding about a defense evaluation that a reader must see beside its numbers. */
export interface DefenseFlag {
  id: 'adaptive-weaker' | 'randomized-needs-eot' | 'masked-gradients';
  message: string;
}

/**
 * The honesty flags of a defense evaluation: an adaptive attack weaker than the plain one, BPDA
 * alone on a randomised defense, or only a non-adaptive attack on non-differentiable steps.
 */
export function defenseFlags(
  r: DefenseEvaluation,
  adaptive: 'bpda' | 'eot' | 'none',
  defended: { randomized: boolean; differentiable: boolean },
): DefenseFlag[] {
  const flags: DefenseFlag[] = [];
  const adaptiveAcc = adaptive === 'none' ? null : r.robustAccuracy[adaptive];
  if (adaptiveAcc !== null && adaptiveAcc > r.robustAccuracy['non-adaptive']) {
    flags.push({
      id: 'adaptive-weaker',
      message: 'the adaptive attack was weaker than the non-adaptive one: report the worst case',
    });
  }
  if (adaptive === 'bpda' && defended.randomized) {
    flags.push({
      id: 'randomized-needs-eot',
      message: 'the defense is randomised: eot averages over its randomness',
    });
  }
  if (adaptive === 'none' && !defended.differentiable) {
    flags.push({
      id: 'masked-gradients',
      message:
        'non-differentiable steps mask gradients: the non-adaptive number overstates robustness',
    });
  }
  return flags;
}

/** The headline numbers of a defense evaluation, as `parry defend` reports them. */
export function defenseSummary(r: DefenseEvaluation, adaptive: 'bpda' | 'eot' | 'none') {
  const r6 = (x: number) => Math.round(x * 1e6) / 1e6;
  return {
    clean_accuracy_undefended: r.cleanAccuracyUndefended,
    clean_accuracy_defended: r.cleanAccuracyDefended,
    defense_cost: r6(r.cleanAccuracyUndefended - r.cleanAccuracyDefended),
    robust_accuracy_non_adaptive: r.robustAccuracy['non-adaptive'],
    robust_accuracy_adaptive: adaptive === 'none' ? null : r.robustAccuracy[adaptive],
    robust_accuracy_worst_case: r.robustAccuracyWorstCase,
    gradient_evaluations: r.gradientEvaluations,
  };
}
