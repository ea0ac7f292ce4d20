/**
 * Reverse sigmoid (Lee et al. 2019, "Defending Against NN Model Stealing Attacks Using Deceptive
 * Perturbations"), as ART's ReverseSigmoid computes it. For each probability p,
 *
 *   r(p) = β · (σ(γ · logit p) − ½),   logit p = log(p / (1 − p)) with p clipped to [1e-9, 1 − 1e-9],
 *   q    = clip(p − r(p), 0, 1),        answer = q / Σ_classes q.
 *
 * The perturbation is applied to the unclipped p; only the logit sees the clip, which matters
 * when γ is small: at p = 1 exactly the logit is log((1 − 1e-9)/1e-9) ≈ 20.72, not infinity, so
 * r(1) = β(σ(20.72γ) − ½) and not β/2. A single-column input is read as the probability of the
 * positive class of a binary model: its row is [p, 1 − p], and the answer is the first column.
 *
 * What it preserves: rows of a probability input sum to 1 (at least one class has p ≤ ½, where
 * q > 0). Not the argmax: p − r(p) is not monotone in p for γ < 1 (its slope tends to −∞ at 0
 * and 1), so a class near 0 can overtake the top class: with β = 1, γ = 0.1 a probability of 1e-6
 * becomes ≈ 0.30 before normalising while 0.2 becomes ≈ 0.23. Lee et al. tune β and γ so that
 * accuracy stays "almost intact"; check the argmax on your own data.
 *
 * Where parry differs from ART: a row whose perturbed values are all 0 (impossible for a
 * probability row, possible for arbitrary scores) comes back unperturbed, where ART divides by 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { checkProbabilities, normalizeRows, type OutputDefense } from './output-defense.js';

export const reverseSigmoidSchema = z.strictObject({
  beta: z
    .number()
    .positive()
    .default(1)
    .describe('magnitude β of the perturbation (reverse-sigmoid)'),
  gamma: z
    .number()
    .positive()
    .default(0.1)
    .describe('convergence γ, model and data specific (reverse-sigmoid)'),
});
export type ReverseSigmoidConfig = z.output<typeof reverseSigmoidSchema>;

/** ART's clip of p inside the logit. */
const CLIP = 1e-9;
/** log((1 − CLIP) / CLIP): the largest logit the clip allows, computed in float64. */
const MAX_LOGIT = Math.log((1 - CLIP) / CLIP);

/** The perturbation r(p) of every value. Call inside `tf.tidy`. */
function perturbation(p: tf.Tensor, beta: number, gamma: number): tf.Tensor {
  // log p − log(1 − p), each side clipped, then the logit clipped to ±MAX_LOGIT: in float32
  // 1 − 1e-9 rounds to 1, so the clip is applied to the logit, where it is representable.
  const logit = tf.clipByValue(
    tf.sub(tf.log(tf.maximum(p, CLIP)), tf.log(tf.maximum(tf.sub(1, p), CLIP))),
    -MAX_LOGIT,
    MAX_LOGIT,
  );
  return tf.mul(tf.sub(tf.sigmoid(tf.mul(logit, gamma)), 0.5), beta);
}

/** `probs` `[batch, classes]` under the reverse-sigmoid perturbation. Caller owns the result. */
export function reverseSigmoid(probs: tf.Tensor2D, beta: number, gamma: number): tf.Tensor2D {
  checkProbabilities('reverseSigmoid', probs);
  return tf.tidy(() => {
    const binary = probs.shape[1] === 1;
    const p: tf.Tensor2D = binary ? tf.concat([probs, tf.sub(1, probs) as tf.Tensor2D], 1) : probs;
    const q = tf.clipByValue(tf.sub(p, perturbation(p, beta, gamma)), 0, 1) as tf.Tensor2D;
    const out = normalizeRows(q, p);
    return binary ? (tf.slice(out, [0, 0], [-1, 1]) as tf.Tensor2D) : out;
  });
}

export function createReverseSigmoid(c: ReverseSigmoidConfig): OutputDefense {
  return {
    name: 'reverse-sigmoid',
    params: c,
    randomized: false,
    preserves: { argmax: 'not-guaranteed', sumsToOne: true },
    apply: (probs) => reverseSigmoid(probs, c.beta, c.gamma),
  };
}
