/**
 * Auto-PGD (Croce & Hein, ICML 2020, "Reliable evaluation of adversarial robustness with an
 * ensemble of diverse parameter-free attacks", Algorithm 1): PGD with momentum whose step size
 * halves at fixed checkpoints when progress stalls, restarting from the best point found.
 * APGD-CE / APGD-DLR ascend cross-entropy / DLR on the true label; APGD-T (`targeted`) runs the
 * targeted DLR loss once per target, for the `numTargets` classes the clean logits rank highest
 * after the true one, and keeps each example's worst case. After the first run, each restart and
 * target attacks only the examples not yet broken, as the reference code does; the gradient count
 * is per example, averaged over the batch. Every variant counts as a success a
 * point the model misclassifies. 'ce' is the attack objective of objective.ts: cross-entropy with
 * a 1e-3 logit-margin term, so that a float32-saturated softmax cannot stall it (plain CE left
 * 4.6% of the committed Fashion-MNIST CNN standing at L∞ eps 0.2, where PGD reaches 0%).
 * Threat model: white-box, L∞ or L2 ball of radius `eps`. Shapes: x [batch, ...inputShape] in
 * model.bounds; labels [batch] int32. Caller owns `result.xAdv`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import type { AttackResult, AttackRunOptions } from '../result.js';
import { dlrLoss, dlrTargetedLoss } from './dlr.js';
import { evasionAttack } from './factory.js';
import { gradientAttack, type Run, type StepRule, startingPoint } from './gradient-loop.js';
import { attackObjective, attackSuccess, checkBatch, parseWith } from './objective.js';
import { enforceThreatModel, normalizeGradient } from './projection.js';

export const apgdConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2']).default('linf'),
    /** N_iter: iterations per run. */
    steps: z.number().int().min(1).default(100),
    /** Runs from independent random starts (per target when `targeted`). */
    restarts: z.number().int().min(1).default(1),
    /** Defaults to 'ce', or 'dlr' (the paper's APGD-T) when `targeted`. */
    loss: z.enum(['ce', 'dlr']).optional(),
    targeted: z.boolean().default(false),
    numTargets: z.number().int().min(1).default(9),
    /** ρ of condition 1 and the momentum α; the paper fixes both at 0.75. */
    rho: z.number().gt(0).max(1).default(0.75),
    alpha: z.number().gt(0).max(1).default(0.75),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type ApgdConfigInput = z.input<typeof apgdConfigSchema>;
export type ApgdConfig = z.infer<typeof apgdConfigSchema> & { loss: 'ce' | 'dlr' };

/** APGD's result: the attack result, the runs made (restarts × targets) and the parsed config. */
export type ApgdResult = AttackResult & { runs: number; config: ApgdConfig };

export function parseApgdConfig(config: unknown): ApgdConfig {
  const c = parseWith('apgd', apgdConfigSchema, config);
  return { ...c, loss: c.loss ?? (c.targeted ? 'dlr' : 'ce') };
}

/**
 * The checkpoints w_j = ceil(p_j·N): p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} −
 * 0.03, 0.06), while p_j ≤ 1. The p_j are kept in integer hundredths so ceil is exact (in floats
 * 0.22 + 0.19 exceeds 0.41). Duplicates, possible for small N, are dropped.
 */
export function apgdCheckpoints(steps: number): number[] {
  const p = [0, 22];
  for (;;) {
    const next = p[p.length - 1] + Math.max(p[p.length - 1] - p[p.length - 2] - 3, 6);
    if (next > 100) break;
    p.push(next);
  }
  return [...new Set(p.map((q) => Math.ceil((q * steps) / 100)))];
}

/** `createApgd` validates a config once (the attack it returns does not re-check it); `apgd`: validates `config`, runs APGD and re-clips the result to the eps-ball and bounds. */
export const { create: createApgd, call: apgd } = evasionAttack(
  (config: ApgdConfigInput) => parseApgdConfig(config),
  runApgd,
);

export type ApgdObjective = (logits: tf.Tensor2D) => tf.Tensor1D;

/** Per-run state. x, loss, grad: the iterate x_k; xMax, lossMax, gradMax: the best point. */
export interface ApgdState {
  x: tf.Tensor;
  xPrev: tf.Tensor;
  loss: tf.Tensor1D;
  grad: tf.Tensor;
  xMax: tf.Tensor;
  lossMax: tf.Tensor1D;
  gradMax: tf.Tensor;
  /** The latest misclassified iterate (meaningful where `success`). */
  xAdv: tf.Tensor;
  success: tf.Tensor1D;
  eta: tf.Tensor1D;
  /** Since the last checkpoint: steps that increased the loss; f_max and whether η was halved. */
  increases: tf.Tensor1D;
  lossMaxAtCheck: tf.Tensor1D;
  halvedAtCheck: tf.Tensor1D;
}

/** A run's state: APGD's tensors and the objective of the run's examples (and target). */
interface ApgdRun {
  s: ApgdState;
  objective: ApgdObjective;
}

async function runApgd(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: ApgdConfig,
  opts: AttackRunOptions,
): Promise<ApgdResult> {
  checkBatch('apgd', model, x, labels);
  const k = model.numClasses;
  const minClasses = c.loss === 'dlr' ? (c.targeted ? 4 : 3) : 2;
  check(
    k >= minClasses,
    () =>
      `apgd: loss '${c.loss}'${c.targeted ? ' (targeted)' : ''} needs >= ${minClasses} classes, got ${k}`,
    'UNSUPPORTED',
  );
  const targets = c.targeted ? rankTargets(model, x, labels, Math.min(c.numTargets, k - 1)) : [];
  const runs = Math.max(targets.length, 1) * c.restarts;
  // One forked generator per run, drawn in run order up front: run r draws the same start
  // whatever the run count is, and a run skipped because every example is broken still uses one.
  const rng = new Rng(c.seed);
  const runRngs = Array.from({ length: runs }, () => rng.fork());
  // Run r attacks target ⌊r / restarts⌋; its labels (and target) gathered to the run's rows.
  const objectiveOf = (run: Run): ApgdObjective => {
    const l = run.gather(labels);
    if (!c.targeted) {
      return (logits) =>
        c.loss === 'ce' ? attackObjective(logits, l, false, 'ce') : dlrLoss(logits, l);
    }
    const t = run.gather(targets[Math.floor(run.index / c.restarts)]);
    return (logits) => targetedObjective(logits, l, t, c.loss);
  };
  const checkpoints = apgdCheckpoints(c.steps);
  const rule: StepRule<ApgdRun> = {
    start: (run) => {
      const objective = objectiveOf(run);
      return {
        objective,
        s: initialState(model, run.x, run.goal, objective, c, runRngs[run.index]),
      };
    },
    step: ({ s, objective }, i, run) => {
      const next = apgdStep(model, run.x, run.goal, objective, s, c, i === 0);
      const j = checkpoints.indexOf(i + 1);
      if (j <= 0) return { s: next, objective };
      const checked = checkpoint(next, c.rho * (checkpoints[j] - checkpoints[j - 1]));
      release(next, checked, s);
      return { s: checked, objective };
    },
    iterate: ({ s }) => s.x,
    dispose: (state, next) => release(state.s, next?.s),
    // Per example, its adversarial point or else its best point, ranked by the best loss.
    outcome: ({ s }, run) =>
      tf.tidy(() => {
        const mask = perExample(s.success, run.x.rank);
        return {
          xAdv: tf.where(tf.broadcastTo(mask, run.x.shape), s.xAdv, s.xMax),
          loss: tf.clone(s.lossMax),
          success: tf.clone(s.success),
        };
      }),
  };
  // Every variant counts a misclassified point as a success; the rule ranks its own runs.
  const settings = { ...c, ...opts, restarts: runs, loss: 'ce' as const, targeted: false };
  try {
    const result = await gradientAttack(model, x, labels, rule, {
      ...settings,
      standingOnly: true,
      gradientsPerRun: c.steps + 1,
    });
    return { ...result, runs, config: c };
  } finally {
    tf.dispose(targets);
  }
}

/** The `n` classes other than the true one with the highest clean logits, as `n` [batch] tensors. */
function rankTargets(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  n: number,
): tf.Tensor1D[] {
  return tf.tidy(() => {
    const logits = model.logits(x);
    const isLabel = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), model.numClasses), 'bool');
    const others = tf.where(isLabel, tf.fill(logits.shape, -Infinity), logits);
    return tf.unstack(tf.topk(others, n).indices, 1) as tf.Tensor1D[];
  });
}

function targetedObjective(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  target: tf.Tensor1D,
  loss: 'ce' | 'dlr',
): tf.Tensor1D {
  return loss === 'dlr'
    ? dlrTargetedLoss(logits, labels, target)
    : attackObjective(logits, target, true, 'ce');
}

/** f, ∇f and the success flag at `xk`, from a single forward and backward pass. */
function evaluate(model: Classifier, xk: tf.Tensor, labels: tf.Tensor1D, objective: ApgdObjective) {
  // The logits escape tf.grad's scope through tf.keep, so they are disposed by hand.
  let logits: tf.Tensor2D | undefined;
  try {
    const grad = tf.grad((v: tf.Tensor) => {
      logits = tf.keep(model.logits(v));
      return tf.sum(objective(logits));
    })(xk);
    const l = logits!;
    return { grad, loss: objective(l), success: attackSuccess(l, labels, false) };
  } finally {
    logits?.dispose();
  }
}

function initialState(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  objective: ApgdObjective,
  c: ApgdConfig,
  rng: Rng,
): ApgdState {
  return tf.tidy(() => {
    const x0 = startingPoint(model, x, { ...c, randomStart: true }, rng);
    const { grad, loss, success } = evaluate(model, x0, labels, objective);
    const b = x.shape[0];
    return {
      x: x0,
      xPrev: x0,
      loss,
      grad,
      xMax: x0,
      lossMax: loss,
      gradMax: grad,
      xAdv: x0,
      success,
      eta: tf.fill([b], 2 * c.eps) as tf.Tensor1D,
      increases: tf.zeros([b]) as tf.Tensor1D,
      lossMaxAtCheck: loss,
      // The paper compares η at w_0 and w_1: not yet halved.
      halvedAtCheck: tf.zeros([b], 'bool') as tf.Tensor1D,
    };
  }) as unknown as ApgdState;
}

/**
 * One iteration (pure): z = P(x_k + η·normalize(∇f(x_k))), x_{k+1} = P(x_k + α(z − x_k) +
 * (1 − α)(x_k − x_{k−1})), where P projects onto the ball then clips into bounds; the first
 * iteration is the plain projected step x_1 = z. Updates the best point and the success record.
 */
export function apgdStep(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  objective: ApgdObjective,
  s: ApgdState,
  c: ApgdConfig,
  first: boolean,
): ApgdState {
  return tf.tidy(() => {
    const P = (v: tf.Tensor) => enforceThreatModel(v, x, c.eps, c.norm, model.bounds);
    const eta = perExample(s.eta, x.rank);
    const zk = P(tf.add(s.x, tf.mul(normalizeGradient(s.grad, c.norm), eta)));
    const next = first
      ? zk
      : P(
          tf.add(
            s.x,
            tf.add(tf.mul(tf.sub(zk, s.x), c.alpha), tf.mul(tf.sub(s.x, s.xPrev), 1 - c.alpha)),
          ),
        );
    const { grad, loss, success } = evaluate(model, next, labels, objective);
    const improved = tf.greater(loss, s.lossMax);
    const pick = (mask: tf.Tensor, a: tf.Tensor, b: tf.Tensor) =>
      tf.where(tf.broadcastTo(perExample(mask, a.rank), a.shape), a, b);
    return {
      ...s,
      x: next,
      xPrev: s.x,
      loss,
      grad,
      xMax: pick(improved, next, s.xMax),
      lossMax: tf.where(improved, loss, s.lossMax),
      gradMax: pick(improved, grad, s.gradMax),
      xAdv: pick(success, next, s.xAdv),
      success: tf.logicalOr(s.success, success),
      increases: tf.add(s.increases, tf.cast(tf.greater(loss, s.loss), 'float32')),
    };
  }) as unknown as ApgdState;
}

/**
 * At checkpoint w_j, halve η and restart from x_max where condition 1 (fewer than ρ·(w_j − w_{j−1})
 * increases since w_{j−1}) or condition 2 (η not halved at w_{j−1} and f_max unchanged) holds.
 */
function checkpoint(s: ApgdState, threshold: number): ApgdState {
  return tf.tidy(() => {
    const cond1 = tf.less(s.increases, threshold);
    const cond2 = tf.logicalAnd(
      tf.logicalNot(s.halvedAtCheck),
      tf.lessEqual(s.lossMax, s.lossMaxAtCheck),
    );
    const halve = tf.logicalOr(cond1, cond2);
    const pick = (a: tf.Tensor, b: tf.Tensor) =>
      tf.where(tf.broadcastTo(perExample(halve, a.rank), a.shape), a, b);
    return {
      ...s,
      eta: tf.where(halve, tf.mul(s.eta, 0.5), s.eta),
      x: pick(s.xMax, s.x),
      loss: tf.where(halve, s.lossMax, s.loss),
      grad: pick(s.gradMax, s.grad),
      increases: tf.zerosLike(s.increases),
      lossMaxAtCheck: s.lossMax,
      halvedAtCheck: halve,
    };
  }) as unknown as ApgdState;
}

/** Disposes what `prev` holds that neither `next` nor `keep` holds. */
function release(prev: ApgdState, next?: ApgdState, keep?: ApgdState): void {
  const kept = new Set<tf.Tensor>([...Object.values(next ?? {}), ...Object.values(keep ?? {})]);
  for (const t of new Set<tf.Tensor>(Object.values(prev))) if (!kept.has(t)) t.dispose();
}

function perExample(v: tf.Tensor, rank: number): tf.Tensor {
  return tf.reshape(v, [v.shape[0], ...new Array<number>(rank - 1).fill(1)]);
}
