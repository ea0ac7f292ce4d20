/**
 * Joint adaptive attack on a classifier and a detector (Carlini & Wagner 2017, "Adversarial
 * examples are not easily detected: bypassing ten detection methods"): PGD maximising
 *   min(max_{j≠y} z_j − z_y, κ) − λ·relu(score(x) − threshold),
 * so the example is misclassified and stays under the detector's threshold. The score's gradient
 * is exact for differentiable detectors (Mahalanobis, KDE, learned, MagNet; LID with its
 * neighbour selection held fixed), BPDA (identity through the squeezers) for feature squeezing,
 * and zero for a detector declared `gradient: 'none'`: then only the classifier term steers and
 * the success check still uses the true score.
 * Threat model: white-box on both, L∞ or L2 ball of radius `eps`, untargeted.
 * Each λ in `lambdas` is one restart (λ = 0 ignores the detector, which wins when it does not
 * fire anyway); per example the first iterate of any restart that is misclassified and not
 * detected is kept (best-iterate selection, as C&W do), else the last iterate of the last run.
 * Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32. Caller owns `xAdv`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkBatch } from '../attacks/evasion/objective.js';
import {
  clipToBounds,
  enforceThreatModel,
  normalizeGradient,
  projectToBall,
  randomStart,
} from '../attacks/evasion/projection.js';
import { scoreForGradient } from '../defenses/detection/detecting-classifier.js';
import type { Detector } from '../defenses/detection/detector.js';
import { Rng } from '../engine/rng.js';
import { check } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { margin } from '../objectives/losses.js';
import { parseWith } from '../options.js';

export const jointConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2']).default('linf'),
    steps: z.number().int().min(1).default(40),
    /** Defaults to 2.5·eps/steps. */
    stepSize: z.number().positive().optional(),
    /** Detector weights, one restart each. */
    lambdas: z.array(z.number().min(0)).min(1).default([0, 1, 10]),
    /** Margin cap κ (logits): beyond it only the detector term pulls. */
    confidence: z.number().min(0).default(1),
    randomStart: z.boolean().default(true),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type JointConfigInput = z.input<typeof jointConfigSchema>;
export type JointConfig = z.infer<typeof jointConfigSchema>;

export interface JointResult {
  xAdv: tf.Tensor;
  /** Per example: misclassified by the base model and not flagged by the detector. */
  success: boolean[];
  gradientEvaluations: number;
  seed: number;
}

/** Per-example objective `[batch]` to maximise. */
export function jointObjective(
  model: Classifier,
  detector: Detector,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  lambda: number,
  confidence: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const attack = tf.minimum(tf.neg(margin(model.logits(x), labels)), confidence);
    if (lambda === 0) return attack as tf.Tensor1D;
    const over = tf.relu(tf.sub(scoreForGradient(detector, x), detector.threshold));
    return tf.sub(attack, tf.mul(over, lambda)) as tf.Tensor1D;
  });
}

/** 1 where x is misclassified and not detected. */
function evades(
  model: Classifier,
  detector: Detector,
  x: tf.Tensor,
  labels: tf.Tensor1D,
): tf.Tensor1D {
  return tf.tidy(() => {
    const wrong = tf.notEqual(tf.argMax(model.logits(x), 1), tf.cast(labels, 'int32'));
    const hidden = tf.lessEqual(detector.scoreTensor(x), detector.threshold);
    return tf.logicalAnd(wrong, hidden) as tf.Tensor1D;
  });
}

export function createJointAttack(config: unknown) {
  const c = parseWith('joint', jointConfigSchema, config);
  const stepSize = c.stepSize ?? (2.5 * c.eps) / c.steps;
  return async (
    model: Classifier,
    detector: Detector,
    x: tf.Tensor,
    labels: tf.Tensor1D,
    signal?: AbortSignal,
  ): Promise<JointResult> => {
    checkBatch('joint', model, x, labels);
    check(
      Number.isFinite(detector.threshold),
      () => `joint: detector '${detector.name}' needs a finite threshold (calibrate first)`,
      'BAD_OPTION',
    );
    const rng = new Rng(c.seed);
    const mask = (m: tf.Tensor) => tf.reshape(m, [-1, ...new Array<number>(x.rank - 1).fill(1)]);
    let best = tf.clone(x);
    let found = evades(model, detector, x, labels);
    try {
      for (const lambda of c.lambdas) {
        const restartRng = rng.fork();
        let xAdv = c.randomStart
          ? tf.tidy(() => clipToBounds(randomStart(x, c.eps, c.norm, restartRng), model.bounds))
          : tf.clone(x);
        for (let s = 0; s < c.steps; s++) {
          signal?.throwIfAborted();
          const next = tf.tidy(() => {
            const grad = tf.grad((v: tf.Tensor) =>
              tf.sum(jointObjective(model, detector, v, labels, lambda, c.confidence)),
            )(xAdv);
            const stepped = tf.add(xAdv, tf.mul(normalizeGradient(grad, c.norm), stepSize));
            return clipToBounds(projectToBall(stepped, x, c.eps, c.norm), model.bounds);
          });
          xAdv.dispose();
          xAdv = next;
          const current = xAdv;
          const [nextBest, nextFound] = tf.tidy(() => {
            const ok = evades(model, detector, current, labels);
            const take = tf.logicalAnd(ok, tf.logicalNot(found));
            return [
              tf.where(tf.broadcastTo(mask(take), x.shape), current, best),
              tf.logicalOr(found, ok),
            ];
          });
          tf.dispose([best, found]);
          best = nextBest;
          found = nextFound as tf.Tensor1D;
          if (signal) await new Promise((resolve) => setTimeout(resolve, 0));
        }
        // Examples no restart broke keep the last run's final iterate.
        const merged = tf.tidy(() => tf.where(tf.broadcastTo(mask(found), x.shape), best, xAdv));
        tf.dispose([best, xAdv]);
        best = merged;
      }
      const xAdv = tf.tidy(() => enforceThreatModel(best, x, c.eps, c.norm, model.bounds));
      const success = Array.from(await found.data(), (v) => v !== 0);
      return { xAdv, success, gradientEvaluations: c.steps * c.lambdas.length, seed: c.seed };
    } finally {
      tf.dispose([best, found]);
    }
  };
}
