/**
 * Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras & Vladu 2018).
 * Threat model: white-box, L∞, L2 or L1 ball of radius `eps`, untargeted or targeted.
 * Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32 (true labels).
 * With `restarts` > 1 each example keeps its worst case over the restarts (as AutoAttack does):
 * a restart that fools the model beats one that does not; among equals, the higher loss wins.
 * Caller owns `result.xAdv`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import { attackGoal, attackObjective, attackSuccess, parseWith } from './objective.js';
import {
  clipToBounds,
  enforceThreatModel,
  normalizeGradient,
  projectToBall,
  randomStart,
} from './projection.js';

export const pgdConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2', 'l1']).default('linf'),
    /** Step length in the chosen norm; defaults to 2.5·eps/steps (Madry et al.). */
    stepSize: z.number().positive().optional(),
    steps: z.number().int().min(0).default(10),
    randomStart: z.boolean().default(true),
    restarts: z.number().int().min(1).default(1),
    targeted: z.boolean().default(false),
    loss: z.enum(['ce', 'margin']).default('ce'),
    /** L1 only: fraction of coordinates the sparse step moves (at least one). */
    l1Fraction: z.number().gt(0).max(1).default(0.01),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type PgdConfigInput = z.input<typeof pgdConfigSchema>;
export type PgdConfig = z.infer<typeof pgdConfigSchema> & { stepSize: number };

export interface PgdOptions {
  /** Required when `targeted`: the classes to reach, `[batch]`. */
  targetLabels?: tf.Tensor1D;
  /** Called after every step (1-based), summed over restarts: step ∈ 1..steps·restarts. */
  onProgress?: (step: number, steps: number) => void;
  /** Checked before every step; aborting rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface PgdResult {
  xAdv: tf.Tensor;
  /** Batch gradient evaluations (forward + backward passes over the whole batch). */
  gradientEvaluations: number;
  seed: number;
  config: PgdConfig;
}

export function parsePgdConfig(config: unknown): PgdConfig {
  const c = parseWith('pgd', pgdConfigSchema, config);
  const stepSize = c.stepSize ?? (c.steps > 0 ? (2.5 * c.eps) / c.steps : 0);
  return { ...c, stepSize };
}

/** One PGD step: ascend the objective along the normalised gradient, project, clip. Pure. */
export function pgdStep(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  goal: tf.Tensor1D,
  c: PgdConfig,
): tf.Tensor {
  return tf.tidy(() => {
    const grad = tf.grad((z: tf.Tensor) =>
      tf.sum(attackObjective(model.logits(z), goal, c.targeted, c.loss)),
    )(xAdv);
    const direction = normalizeGradient(grad, c.norm, c.l1Fraction);
    const stepped = tf.add(xAdv, tf.mul(direction, c.stepSize));
    return clipToBounds(projectToBall(stepped, x, c.eps, c.norm), model.bounds);
  });
}

/** Validates a config once; the returned attack does not re-check it. */
export function createPgd(config: unknown) {
  const c = parsePgdConfig(config);
  return (model: Classifier, x: tf.Tensor, labels: tf.Tensor1D, opts: PgdOptions = {}) =>
    runPgd(model, x, labels, c, opts);
}

/** Validates `config`, runs PGD and re-clips the result to the eps-ball and bounds. */
export async function pgd(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  config: PgdConfigInput,
  opts: PgdOptions = {},
): Promise<PgdResult> {
  return createPgd(config)(model, x, labels, opts);
}

async function runPgd(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: PgdConfig,
  opts: PgdOptions,
): Promise<PgdResult> {
  const goal = attackGoal('pgd', model, x, labels, c.targeted, opts.targetLabels);
  const rng = new Rng(c.seed);
  const total = c.steps * c.restarts;
  let done = 0;
  let best: Candidate | undefined;
  try {
    for (let r = 0; r < c.restarts; r++) {
      // One forked generator per restart: restart r draws the same start whatever `restarts` is.
      const restartRng = rng.fork();
      let xAdv = c.randomStart
        ? tf.tidy(() => clipToBounds(randomStart(x, c.eps, c.norm, restartRng), model.bounds))
        : tf.clone(x);
      try {
        for (let s = 0; s < c.steps; s++) {
          opts.signal?.throwIfAborted();
          const next = pgdStep(model, x, xAdv, goal, c);
          xAdv.dispose();
          xAdv = next;
          done++;
          opts.onProgress?.(done, total);
          // Give timers and abort signals a chance to run between steps.
          if (opts.signal) await new Promise((resolve) => setTimeout(resolve, 0));
        }
        const final = tf.tidy(() => enforceThreatModel(xAdv, x, c.eps, c.norm, model.bounds));
        xAdv.dispose();
        xAdv = final;
      } catch (e) {
        xAdv.dispose();
        throw e;
      }
      best = keepWorstCase(best, score(model, xAdv, goal, c));
    }
  } catch (e) {
    disposeCandidate(best);
    throw e;
  }
  const { xAdv, loss, success } = best!;
  tf.dispose([loss, success]);
  return { xAdv, gradientEvaluations: total, seed: c.seed, config: c };
}

interface Candidate {
  xAdv: tf.Tensor;
  loss: tf.Tensor1D;
  success: tf.Tensor1D;
}

/** Takes ownership of xAdv. */
function score(model: Classifier, xAdv: tf.Tensor, goal: tf.Tensor1D, c: PgdConfig): Candidate {
  return tf.tidy(() => {
    const logits = model.logits(xAdv);
    return {
      xAdv,
      loss: attackObjective(logits, goal, c.targeted, c.loss),
      success: attackSuccess(logits, goal, c.targeted),
    };
  });
}

/** Per example: a success beats a failure; among equals the higher objective wins. Owns both. */
function keepWorstCase(best: Candidate | undefined, cand: Candidate): Candidate {
  if (best == null) return cand;
  const merged = tf.tidy(() => {
    const newWins = tf.logicalOr(
      tf.logicalAnd(cand.success, tf.logicalNot(best.success)),
      tf.logicalAnd(tf.equal(cand.success, best.success), tf.greater(cand.loss, best.loss)),
    );
    const rank = cand.xAdv.rank;
    const mask = tf.reshape(newWins, [-1, ...new Array<number>(rank - 1).fill(1)]);
    return {
      xAdv: tf.where(tf.broadcastTo(mask, cand.xAdv.shape), cand.xAdv, best.xAdv),
      loss: tf.where(newWins, cand.loss, best.loss) as tf.Tensor1D,
      success: tf.logicalOr(cand.success, best.success) as tf.Tensor1D,
    };
  });
  disposeCandidate(best);
  disposeCandidate(cand);
  return merged;
}

function disposeCandidate(c: Candidate | undefined): void {
  if (c) tf.dispose([c.xAdv, c.loss, c.success]);
}
