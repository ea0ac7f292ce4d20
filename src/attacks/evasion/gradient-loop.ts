/**
 * The iterative gradient attack loop, written once (Foolbox's shape: the loop is shared, the
 * attacks differ in their step rule). Per restart: a start point, `steps` applications of the
 * rule — each checking the abort signal, reporting progress and yielding to timers — and a final
 * re-projection onto the threat model (attacks cannot be trusted to return a point inside it).
 * Across restarts each example keeps its worst case: a restart that fools the model beats one
 * that does not; among equals, the higher objective wins (as AutoAttack does).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../models/classifier.js';
import type { Norm } from '../../objectives/threat-model.js';
import { type AttackLoss, attackObjective, attackSuccess } from './objective.js';
import { enforceThreatModel, normalizeGradient } from './projection.js';

/**
 * One projected ascent step of `objective` (per-example values of the logits, summed): along the
 * gradient normalised in `norm`, `stepSize` long, back onto the eps-ball around x and into the
 * model's bounds. The step of PGD/BIM and of adversarial training's crafting. Pure; caller owns it.
 */
export function ascentStep(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  objective: (logits: tf.Tensor2D) => tf.Tensor,
  s: { norm: Norm; eps: number; stepSize: number; l1Fraction?: number },
): tf.Tensor {
  return tf.tidy(() => {
    const grad = tf.grad((z: tf.Tensor) => tf.sum(objective(model.logits(z))))(xAdv);
    const direction = normalizeGradient(grad, s.norm, s.l1Fraction);
    const stepped = tf.add(xAdv, tf.mul(direction, s.stepSize));
    return enforceThreatModel(stepped, x, s.eps, s.norm, model.bounds);
  });
}

/**
 * `steps` applications of `step` from `start`, synchronously (for callers inside a training step,
 * which cannot await): each state is disposed once the next exists. Owns `start`; caller owns
 * the result.
 */
export function iterateSteps<S>(
  rule: Pick<StepRule<S>, 'step' | 'dispose'>,
  start: S,
  steps: number,
): S {
  let state = start;
  for (let k = 0; k < steps; k++) {
    const next = rule.step(state);
    rule.dispose(state);
    state = next;
  }
  return state;
}

/** How one attack moves: its state (the iterate plus anything it carries, e.g. momentum). */
export interface StepRule<S> {
  /** The state a restart starts from (restart 0, 1, ...); the loop owns it. */
  start(restart: number): S;
  /** One step: a new state (the loop disposes the old one). Pure and synchronous. */
  step(state: S): S;
  /** The iterate of a state (not a copy). */
  iterate(state: S): tf.Tensor;
  /** Frees what a state holds. */
  dispose(state: S): void;
}

export interface LoopSettings {
  steps: number;
  restarts: number;
  eps: number;
  norm: Norm;
  /** What restarts are ranked by (per example), and whether the goal is a target class. */
  loss: AttackLoss;
  targeted: boolean;
  signal?: AbortSignal;
  /** Steps done so far, summed over restarts, out of `steps · restarts`. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Runs `rule` from each restart's start and returns the per-example worst case, inside the
 * eps-ball around `x` and the model's bounds. `goal` holds the true labels (untargeted) or the
 * targets. Caller owns the result.
 */
export async function runGradientLoop<S>(
  model: Classifier,
  x: tf.Tensor,
  goal: tf.Tensor1D,
  rule: StepRule<S>,
  s: LoopSettings,
): Promise<tf.Tensor> {
  const total = s.steps * s.restarts;
  let done = 0;
  let best: Candidate | undefined;
  try {
    for (let r = 0; r < s.restarts; r++) {
      let state = rule.start(r);
      let xAdv: tf.Tensor;
      try {
        for (let k = 0; k < s.steps; k++) {
          s.signal?.throwIfAborted();
          const next = rule.step(state);
          rule.dispose(state);
          state = next;
          s.onProgress?.(++done, total);
          // Give timers and abort signals a chance to run between steps.
          if (s.signal) await new Promise((resolve) => setTimeout(resolve, 0));
        }
        const it = rule.iterate(state);
        xAdv = tf.tidy(() => enforceThreatModel(it, x, s.eps, s.norm, model.bounds));
      } finally {
        rule.dispose(state);
      }
      // One restart needs no ranking (and no forward pass for it).
      best = s.restarts === 1 ? { xAdv } : keepWorstCase(best, score(model, xAdv, goal, s));
    }
  } catch (e) {
    disposeCandidate(best);
    throw e;
  }
  const { xAdv, loss, success } = best!;
  tf.dispose([loss, success].filter((t) => t !== undefined));
  return xAdv;
}

interface Candidate {
  xAdv: tf.Tensor;
  loss?: tf.Tensor1D;
  success?: tf.Tensor1D;
}

/** Takes ownership of xAdv. */
function score(model: Classifier, xAdv: tf.Tensor, goal: tf.Tensor1D, s: LoopSettings): Candidate {
  return tf.tidy(() => {
    const logits = model.logits(xAdv);
    return {
      xAdv,
      loss: attackObjective(logits, goal, s.targeted, s.loss),
      success: attackSuccess(logits, goal, s.targeted),
    };
  });
}

/** Per example: a success beats a failure; among equals the higher objective wins. Owns both. */
function keepWorstCase(best: Candidate | undefined, cand: Candidate): Candidate {
  if (best == null) return cand;
  const merged = tf.tidy(() => {
    const [bl, bs, cl, cs] = [best.loss!, best.success!, cand.loss!, cand.success!];
    const newWins = tf.logicalOr(
      tf.logicalAnd(cs, tf.logicalNot(bs)),
      tf.logicalAnd(tf.equal(cs, bs), tf.greater(cl, bl)),
    );
    const mask = tf.reshape(newWins, [-1, ...new Array<number>(cand.xAdv.rank - 1).fill(1)]);
    return {
      xAdv: tf.where(tf.broadcastTo(mask, cand.xAdv.shape), cand.xAdv, best.xAdv),
      loss: tf.where(newWins, cl, bl) as tf.Tensor1D,
      success: tf.logicalOr(cs, bs) as tf.Tensor1D,
    };
  });
  disposeCandidate(best);
  disposeCandidate(cand);
  return merged;
}

function disposeCandidate(c: Candidate | undefined): void {
  if (c) tf.dispose([c.xAdv, c.loss, c.success].filter((t) => t !== undefined));
}
