/**
 * DeepFool (Moosavi-Dezfooli, Fawzi & Frossard, CVPR 2016), multi-class, L2 and L∞.
 * Threat model: white-box, untargeted, minimum-norm: no eps budget (an optional `eps` caps the
 * perturbation by projecting onto that ball). Each iteration linearises the logit differences
 * f_k = z_k − z_y of the `candidates` − 1 strongest other classes (ranked once, at x) and steps to
 * the nearest linearised boundary: L2 |f_k|/‖w_k‖₂ · w_k/‖w_k‖₂, L∞ |f_k|/‖w_k‖₁ · sign(w_k),
 * where w_k = ∇f_k. As in the reference implementation (LTS4/DeepFool, and Foolbox), each step
 * adds 1e-4 to the distance, steps accumulate in r_total and the iterate is
 * x + (1 + overshoot)·r_total. An example stops once it is misclassified.
 * Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32 (true labels).
 * Caller owns `xAdv`, `success` and `perturbationNorms` of the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Classifier } from '../../models/classifier.js';
import type { AttackResult, AttackRunOptions } from '../result.js';
import { evasionAttack } from './factory.js';
import { finishAttack } from './gradient-loop.js';
import { checkBatch, parseWith } from './objective.js';
import {
  clipToBounds,
  enforceThreatModel,
  normalizeGradient,
  perturbationNorms,
} from './projection.js';

export const deepFoolConfigSchema = z
  .object({
    norm: z.enum(['l2', 'linf']).default('l2'),
    steps: z.number().int().min(0).default(50),
    /** Classes linearised per step, the true label included (capped at numClasses). */
    candidates: z.number().int().min(2).default(10),
    overshoot: z.number().min(0).default(0.02),
    /** Optional cap: results are projected onto the `norm` ball of this radius around x. */
    eps: z.number().min(0).optional(),
  })
  .strict();
export type DeepFoolConfig = z.infer<typeof deepFoolConfigSchema>;
export type DeepFoolConfigInput = z.input<typeof deepFoolConfigSchema>;

/**
 * `onProgress` hears every step (1-based); `steps` is the maximum, early stops skip the rest.
 * Untargeted: `targetLabels` is not read.
 */
export type DeepFoolOptions = AttackRunOptions;

/**
 * DeepFool's result: success is misclassification at xAdv; `gradientEvaluations` counts backward
 * passes over the whole batch; deterministic (seed 0).
 */
export type DeepFoolResult = AttackResult & { config: DeepFoolConfig };

/** Added to each step's distance, as the reference implementation does, to cross the boundary. */
const STEP_SLACK = 1e-4;
const TINY = 1e-8;

/** A per-example `[batch]` tensor reshaped to broadcast against rank `rank`. */
function perExample(v: tf.Tensor, rank: number): tf.Tensor {
  return tf.reshape(v, [v.shape[0], ...new Array<number>(rank - 1).fill(1)]);
}

/** The `candidates` − 1 highest-scoring classes other than the label at x, `[batch, K − 1]`. */
export function deepFoolCandidates(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  candidates: number,
): tf.Tensor2D {
  const k = Math.min(candidates, model.numClasses);
  return tf.tidy(() => {
    const yHot = tf.oneHot(tf.cast(labels, 'int32'), model.numClasses);
    const masked = tf.sub(model.logits(x), tf.mul(yHot, 1e9));
    return tf.topk(masked, k - 1).indices as tf.Tensor2D;
  });
}

/**
 * One DeepFool step for the examples still classified as their label (the others keep xAdv).
 * `others` `[batch, K − 1]` from {@link deepFoolCandidates}. Pure; returns the new iterate and
 * accumulated r_total.
 */
export function deepFoolStep(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  rTotal: tf.Tensor,
  labels: tf.Tensor1D,
  others: tf.Tensor2D,
  c: DeepFoolConfig,
): { xAdv: tf.Tensor; rTotal: tf.Tensor } {
  return tf.tidy(() => {
    const n = model.numClasses;
    const y = tf.cast(labels, 'int32');
    const yHot = tf.oneHot(y, n);
    const logits = model.logits(xAdv);
    const active = tf.equal(tf.argMax(logits, 1), y);
    const dual = c.norm === 'l2' ? 'l2' : 'l1';
    const distances: tf.Tensor1D[] = [];
    const steps: tf.Tensor[] = [];
    for (let j = 0; j < others.shape[1]; j++) {
      const kHot = tf.oneHot(tf.reshape(tf.slice(others, [0, j], [-1, 1]), [-1]), n);
      const diff = tf.sub(kHot, yHot); // selects f_k = z_k − z_y
      const f = tf.sum(tf.mul(logits, diff), 1);
      // Examples are independent, so the gradient of the batch sum is each example's ∇f_k.
      const w = tf.grad((v: tf.Tensor) => tf.sum(tf.mul(model.logits(v), diff)))(xAdv);
      const wNorm = perturbationNorms(w, tf.zerosLike(w), dual);
      const dist = tf.div(tf.abs(f), tf.add(wNorm, TINY)) as tf.Tensor1D;
      distances.push(dist);
      const size = perExample(tf.add(dist, STEP_SLACK), w.rank);
      steps.push(tf.mul(normalizeGradient(w, c.norm), size));
    }
    const best = tf.argMin(tf.stack(distances, 1), 1);
    let step = tf.zerosLike(xAdv);
    steps.forEach((s, j) => {
      const pick = tf.cast(tf.equal(best, j), 'float32');
      step = tf.add(step, tf.mul(s, perExample(pick, s.rank)));
    });
    const activeMask = tf.broadcastTo(perExample(active, x.rank), x.shape);
    const r = tf.add(rTotal, tf.where(activeMask, step, tf.zerosLike(step)));
    const candidate = tf.add(x, tf.mul(r, 1 + c.overshoot));
    return { xAdv: tf.where(activeMask, bound(candidate, x, model, c), xAdv), rTotal: r };
  });
}

/** Bounds, and the eps-ball when a cap is given. */
function bound(xAdv: tf.Tensor, x: tf.Tensor, model: Classifier, c: DeepFoolConfig): tf.Tensor {
  return c.eps == null
    ? clipToBounds(xAdv, model.bounds)
    : enforceThreatModel(xAdv, x, c.eps, c.norm, model.bounds);
}

/** `createDeepFool` validates a config once (the attack it returns does not re-check it); `deepFool`: validates `config` and runs DeepFool. */
export const { create: createDeepFool, call: deepFool } = evasionAttack(
  (config: DeepFoolConfigInput) => parseWith('deepfool', deepFoolConfigSchema, config),
  runDeepFool,
);

function stillCorrect(model: Classifier, xAdv: tf.Tensor, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(
    () => tf.equal(tf.argMax(model.logits(xAdv), 1), tf.cast(labels, 'int32')) as tf.Tensor1D,
  );
}

async function runDeepFool(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: DeepFoolConfig,
  opts: DeepFoolOptions,
): Promise<DeepFoolResult> {
  checkBatch('deepfool', model, x, labels);
  const others = deepFoolCandidates(model, x, labels, c.candidates);
  let xAdv = tf.clone(x);
  let rTotal = tf.zerosLike(x);
  let gradientEvaluations = 0;
  try {
    for (let s = 0; s < c.steps; s++) {
      opts.signal?.throwIfAborted();
      // One scalar read per step: the reference stops as soon as every example is fooled.
      const remaining = tf.tidy(() => tf.any(stillCorrect(model, xAdv, labels)));
      const anyLeft = (await remaining.data())[0] !== 0;
      remaining.dispose();
      if (!anyLeft) break;
      const next = deepFoolStep(model, x, xAdv, rTotal, labels, others, c);
      tf.dispose([xAdv, rTotal]);
      ({ xAdv, rTotal } = next);
      gradientEvaluations += others.shape[1];
      opts.onProgress?.(s + 1, c.steps);
      if (opts.signal) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const final = tf.tidy(() => bound(xAdv, x, model, c));
    xAdv.dispose();
    xAdv = final;
  } catch (e) {
    xAdv.dispose();
    throw e;
  } finally {
    tf.dispose([rTotal, others]);
  }
  const measured = finishAttack(model, x, xAdv, labels, { norm: c.norm, targeted: false });
  return { ...measured, gradientEvaluations, queries: 0, seed: 0, config: c };
}
