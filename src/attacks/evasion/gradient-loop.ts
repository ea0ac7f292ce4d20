/**
 * The iterative gradient attack loop, written once (Foolbox's shape: the loop is shared, the
 * attacks differ in their step rule). Per run (restart): a start point, `steps` applications of
 * the rule — each checking the abort signal, reporting progress and yielding to timers — and a
 * re-projection onto the threat model (attacks cannot be trusted to return a point inside it).
 * Across runs each example keeps its worst case: a run that fools the model beats one that does
 * not; among equals, the higher objective wins (as AutoAttack does). FGSM, BIM/PGD, MIM and APGD
 * are step rules; adversarial training crafts with the synchronous core (`ascentStep`,
 * `iterateSteps`), which a training step can wrap in `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import type { Norm } from '../../objectives/threat-model.js';
import type { AttackResult } from '../result.js';
import { type AttackLoss, attackObjective, attackSuccess, CE_MARGIN_WEIGHT } from './objective.js';
import {
  clipToBounds,
  enforceThreatModel,
  normalizeGradient,
  perturbationNorms,
  randomStart,
} from './projection.js';

/** Per-example values `[batch]` of the logits that an attack ascends (summed for the gradient). */
export type Objective = (logits: tf.Tensor2D) => tf.Tensor;

/** ∇ₓ Σ objective(model.logits(x)) at `xAdv`. Caller owns the result. */
export function objectiveGradient(
  model: Classifier,
  xAdv: tf.Tensor,
  objective: Objective,
): tf.Tensor {
  return tf.grad((z: tf.Tensor) => tf.sum(objective(model.logits(z))))(xAdv);
}

/**
 * Where a run starts: uniformly in the eps-ball around x, clipped into the bounds (`randomStart`,
 * drawing from `rng`), or at x itself. Caller owns the result.
 */
export function startingPoint(
  model: Classifier,
  x: tf.Tensor,
  s: { eps: number; norm: Norm; randomStart: boolean },
  rng: Rng,
): tf.Tensor {
  return s.randomStart
    ? tf.tidy(() => clipToBounds(randomStart(x, s.eps, s.norm, rng), model.bounds))
    : tf.clone(x);
}

/** What one ascent step needs: the ball, the step length, and where it lands. */
export interface AscentSetting {
  norm: Norm;
  eps: number;
  stepSize: number;
  l1Fraction?: number;
  /**
   * 'ball' (default): project onto the eps-ball, then clip; 'bounds': clip only (N-FGSM);
   * 'none': leave it to the caller (FGSM, whose loop projects once).
   */
  constrain?: 'ball' | 'bounds' | 'none';
}

/** The goal, direction and loss of `attackObjective`, by name, so a native engine can run it. */
export interface NamedObjective {
  goal: tf.Tensor1D;
  targeted: boolean;
  loss: AttackLoss;
}

/**
 * ∇ₓ Σ attackObjective(logits, goal, targeted, loss) at `xAdv`: in one native run (the engine's
 * fused loss head) when the model has an engine, else through `logits`. Caller owns the result.
 */
export function attackGradient(model: Classifier, xAdv: tf.Tensor, o: NamedObjective): tf.Tensor {
  if (model.engine === undefined) {
    return objectiveGradient(model, xAdv, (l) => attackObjective(l, o.goal, o.targeted, o.loss));
  }
  const loss = { kind: o.loss, marginWeight: CE_MARGIN_WEIGHT, targeted: o.targeted };
  return model.engine.lossGradient(xAdv, o.goal, loss);
}

/**
 * One projected ascent step of `objective` (a function of the logits, or an attack objective by
 * name, which a native engine runs in one pass): along the gradient normalised in `norm`,
 * `stepSize` long, back onto the eps-ball around x and into the model's bounds. The step of FGSM,
 * BIM/PGD and of adversarial training's crafting. Pure; caller owns the result.
 */
export function ascentStep(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  objective: Objective | NamedObjective,
  s: AscentSetting,
): tf.Tensor {
  return tf.tidy(() => {
    const grad =
      typeof objective === 'function'
        ? objectiveGradient(model, xAdv, objective)
        : attackGradient(model, xAdv, objective);
    return ascend(model, x, xAdv, grad, s);
  });
}

/** The ascent step's move for a given gradient. Call inside `tf.tidy`. */
function ascend(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  grad: tf.Tensor,
  s: AscentSetting,
): tf.Tensor {
  const direction = normalizeGradient(grad, s.norm, s.l1Fraction);
  const stepped = tf.add(xAdv, tf.mul(direction, s.stepSize));
  if (s.constrain === 'none') return stepped;
  if (s.constrain === 'bounds') return clipToBounds(stepped, model.bounds);
  return enforceThreatModel(stepped, x, s.eps, s.norm, model.bounds);
}

/**
 * `steps` applications of `step` from `start`, synchronously (for callers inside a training step,
 * which cannot await): each state is disposed once the next exists. Owns `start`; caller owns
 * the result.
 */
export function iterateSteps<S>(
  rule: { step(state: S, k: number): S; dispose(state: S): void },
  start: S,
  steps: number,
): S {
  let state = start;
  for (let k = 0; k < steps; k++) {
    const next = rule.step(state, k);
    rule.dispose(state);
    state = next;
  }
  return state;
}

/**
 * One run of the loop: its index, and the examples it attacks. `x` and `goal` are the batch's,
 * or only the standing rows' (`rows`) when the loop attacks unbroken examples only; `gather`
 * narrows any other per-example tensor the same way (the loop frees what it gathers).
 */
export interface Run {
  index: number;
  x: tf.Tensor;
  goal: tf.Tensor1D;
  rows: tf.Tensor1D | null;
  gather<T extends tf.Tensor>(t: T): T;
}

/** A run's result, ranked per example against the best so far. */
export interface Candidate {
  xAdv: tf.Tensor;
  /** The objective the ranking compares (higher is worse for the model). */
  loss: tf.Tensor1D;
  success: tf.Tensor1D;
}

/** How one attack moves: its state (the iterate plus anything it carries, e.g. momentum). */
export interface StepRule<S> {
  /** The state a run starts from; the loop owns it. */
  start(run: Run): S;
  /** Step k (0-based): a new state (the loop then disposes the old one). Pure. */
  step(state: S, k: number, run: Run): S;
  /** The iterate of a state (not a copy). */
  iterate(state: S): tf.Tensor;
  /** Frees what `state` holds — except what `next`, the state that replaced it, still holds. */
  dispose(state: S, next?: S): void;
  /**
   * The run's candidate, when the rule tracks its own best point (APGD); by default the final
   * iterate, scored with the loop's objective. The loop projects it onto the threat model.
   */
  outcome?(state: S, run: Run): Candidate;
}

export interface LoopSettings {
  steps: number;
  /** Runs from independent starts (restarts, times targets for APGD-T). */
  restarts: number;
  eps: number;
  norm: Norm;
  /** What runs are ranked by (unless the rule has `outcome`), and the goal's meaning. */
  loss: AttackLoss;
  targeted: boolean;
  /** After the first run, attack only the examples not yet broken (APGD's reference code). */
  standingOnly?: boolean;
  signal?: AbortSignal;
  /** Steps done so far, summed over runs, out of `steps · restarts`. */
  onProgress?: (done: number, total: number) => void;
}

/** The loop's answer: the result tensors, and how many example-runs it attacked. */
export type LoopResult = Pick<
  AttackResult,
  'xAdv' | 'predictions' | 'success' | 'perturbationNorms'
> & {
  /** Examples attacked, summed over runs (`batch · restarts` unless `standingOnly`). */
  exampleRuns: number;
};

/**
 * Runs `rule` from each run's start and returns the per-example worst case, inside the eps-ball
 * around `x` and the model's bounds, with the model's predictions on it, the success flags (the
 * goal reached: `goal` holds the true labels, or the targets when `targeted`) and the norms of
 * the perturbations. Caller owns the result tensors.
 */
export async function runGradientLoop<S>(
  model: Classifier,
  x: tf.Tensor,
  goal: tf.Tensor1D,
  rule: StepRule<S>,
  s: LoopSettings,
): Promise<LoopResult> {
  const batch = x.shape[0];
  const progress = { done: 0, total: s.steps * s.restarts };
  let best: Candidate | undefined;
  let exampleRuns = 0;
  // One run needs no ranking (and no forward pass for it).
  const ranked = s.restarts > 1 || rule.outcome != null;
  try {
    for (let r = 0; r < s.restarts; r++) {
      const standing = s.standingOnly && best ? standingRows(best.success) : null;
      if (standing?.length === 0) {
        progress.done += s.steps;
        s.onProgress?.(progress.done, progress.total);
        continue;
      }
      const rows = standing && standing.length < batch ? tf.tensor1d(standing, 'int32') : null;
      const owned: tf.Tensor[] = rows ? [rows] : [];
      const gather = <T extends tf.Tensor>(t: T): T => {
        if (rows == null) return t;
        const g = tf.gather(t, rows) as T;
        owned.push(g);
        return g;
      };
      try {
        const run: Run = { index: r, x: gather(x), goal: gather(goal), rows, gather };
        const cand = await runOnce(model, rule, run, s, progress, ranked);
        exampleRuns += rows ? rows.shape[0] : batch;
        best = ranked
          ? keepWorstCase(
              best,
              rows && best ? expand(cand as Candidate, best, rows) : (cand as Candidate),
            )
          : (cand as Candidate);
      } finally {
        tf.dispose(owned);
      }
    }
  } catch (e) {
    disposeCandidate(best);
    throw e;
  }
  const { xAdv, loss, success } = best!;
  tf.dispose([loss, success].filter((t) => t != null));
  return { ...finishAttack(model, x, xAdv, goal, s), exampleRuns };
}

/**
 * `runGradientLoop` as a white-box attack's result: `gradientsPerRun` batch gradient evaluations
 * per run, counted per example (averaged over the batch) when runs attack only standing rows.
 */
export async function gradientAttack<S>(
  model: Classifier,
  x: tf.Tensor,
  goal: tf.Tensor1D,
  rule: StepRule<S>,
  s: LoopSettings & { seed: number; gradientsPerRun: number },
): Promise<AttackResult> {
  const { exampleRuns, ...result } = await runGradientLoop(model, x, goal, rule, s);
  const gradientEvaluations = (exampleRuns / x.shape[0]) * s.gradientsPerRun;
  return { ...result, gradientEvaluations, queries: 0, seed: s.seed };
}

/** One run: start, `steps` steps, then the candidate (projected onto the threat model). */
async function runOnce<S>(
  model: Classifier,
  rule: StepRule<S>,
  run: Run,
  s: LoopSettings,
  progress: { done: number; total: number },
  ranked: boolean,
): Promise<Partial<Candidate> & { xAdv: tf.Tensor }> {
  let state = rule.start(run);
  try {
    for (let k = 0; k < s.steps; k++) {
      s.signal?.throwIfAborted();
      const next = rule.step(state, k, run);
      rule.dispose(state, next);
      state = next;
      s.onProgress?.(++progress.done, progress.total);
      // Give timers and abort signals a chance to run between steps.
      if (s.signal) await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const project = (t: tf.Tensor) =>
      tf.tidy(() => enforceThreatModel(t, run.x, s.eps, s.norm, model.bounds));
    if (rule.outcome) {
      const c = rule.outcome(state, run);
      const xAdv = project(c.xAdv);
      c.xAdv.dispose();
      return { ...c, xAdv };
    }
    const xAdv = project(rule.iterate(state));
    return ranked ? score(model, xAdv, run.goal, s) : { xAdv };
  } finally {
    rule.dispose(state);
  }
}

/**
 * An attack's result tensors for a final point: the predictions, success (goal reached) and
 * perturbation norms, from one forward pass. Takes ownership of `xAdv`.
 */
export function finishAttack(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  goal: tf.Tensor1D,
  s: { norm: Norm; targeted: boolean },
): Pick<AttackResult, 'xAdv' | 'predictions' | 'success' | 'perturbationNorms'> {
  return tf.tidy(() => {
    const logits = model.logits(xAdv);
    return {
      xAdv,
      predictions: tf.cast(tf.argMax(logits, 1), 'int32') as tf.Tensor1D,
      success: attackSuccess(logits, goal, s.targeted),
      perturbationNorms: perturbationNorms(xAdv, x, s.norm),
    };
  });
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

function perExample(v: tf.Tensor, rank: number): tf.Tensor {
  return tf.reshape(v, [v.shape[0], ...new Array<number>(rank - 1).fill(1)]);
}

/** Per example: a success beats a failure; among equals the higher objective wins. Owns both. */
function keepWorstCase(best: Candidate | undefined, cand: Candidate): Candidate {
  if (best == null) return cand;
  const merged = tf.tidy(() => {
    const newWins = tf.logicalOr(
      tf.logicalAnd(cand.success, tf.logicalNot(best.success)),
      tf.logicalAnd(tf.equal(cand.success, best.success), tf.greater(cand.loss, best.loss)),
    );
    const mask = tf.broadcastTo(perExample(newWins, cand.xAdv.rank), cand.xAdv.shape);
    return {
      xAdv: tf.where(mask, cand.xAdv, best.xAdv),
      loss: tf.where(newWins, cand.loss, best.loss) as tf.Tensor1D,
      success: tf.logicalOr(cand.success, best.success) as tf.Tensor1D,
    };
  });
  disposeCandidate(best);
  disposeCandidate(cand);
  return merged;
}

/** Row indices of the examples not yet broken (read at a run boundary). */
function standingRows(success: tf.Tensor1D): number[] {
  const flags = success.dataSync();
  const rows: number[] = [];
  for (let i = 0; i < flags.length; i++) if (!flags[i]) rows.push(i);
  return rows;
}

/**
 * A candidate for rows `rows` of the batch, widened to the whole batch with `best`'s values
 * elsewhere (so `keepWorstCase` keeps `best` there). Owns `cand`; `best` is left alone.
 */
function expand(cand: Candidate, best: Candidate, rows: tf.Tensor1D): Candidate {
  const wide = tf.tidy(() => {
    const b = best.xAdv.shape[0];
    const pick = Array.from({ length: b }, (_, i) => i);
    const r = rows.dataSync();
    for (let p = 0; p < r.length; p++) pick[r[p]] = b + p;
    const sel = tf.tensor1d(pick, 'int32');
    return {
      xAdv: tf.gather(tf.concat([best.xAdv, cand.xAdv]), sel),
      loss: tf.gather(tf.concat([best.loss, cand.loss]), sel) as tf.Tensor1D,
      success: tf.gather(tf.concat([best.success, cand.success]), sel) as tf.Tensor1D,
    };
  });
  disposeCandidate(cand);
  return wide;
}

function disposeCandidate(c: Partial<Candidate> | undefined): void {
  if (c) tf.dispose([c.xAdv, c.loss, c.success].filter((t) => t != null));
}
