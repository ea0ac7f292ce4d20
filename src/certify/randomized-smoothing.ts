/**
 * Randomized smoothing (Cohen, Rosenfeld & Kolter, "Certified Adversarial Robustness via
 * Randomized Smoothing", ICML 2019), following the paper's pseudo-code (and locuslab/smoothing
 * `core.py`) step by step.
 *
 * The smoothed classifier is g(x) = argmax_c P(f(x + ε) = c), ε ~ N(0, σ²I), where f is the base
 * classifier's argmax. Guarantee (Theorem 1): if P(f(x + ε) = c_A) ≥ p̲_A > ½, then g(x + δ) = c_A
 * for every ‖δ‖₂ < R = σ·Φ⁻¹(p̲_A). PREDICT and CERTIFY estimate these probabilities by Monte
 * Carlo: PREDICT returns a wrong class (rather than abstaining) with probability at most alpha;
 * CERTIFY returns a class and radius for which the guarantee fails with probability at most
 * alpha. Both hold over the sampling noise only; the certificate is in input space, L2 norm.
 */

import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { Rng } from '../engine/rng.js';
import { check, ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { parseWith } from '../options.js';
import { binomialTestPValue, clopperPearsonLower, normalQuantile } from './stats.js';

/** Returned as the class when the smoothed classifier abstains. */
export const ABSTAIN = -1;

const common = {
  /** Noise level σ; must match the Gaussian noise the base classifier was trained with. */
  sigma: z.number().positive(),
  /** Failure probability of the test / confidence bound. */
  alpha: z.number().gt(0).lt(1).default(0.001),
  /** Noisy copies per forward pass. */
  batchSize: z.number().int().min(1).default(1000),
};

export const predictConfigSchema = z
  .object({ n: z.number().int().min(1).default(10_000), ...common })
  .strict();
export type PredictConfig = z.infer<typeof predictConfigSchema>;
export type PredictConfigInput = z.input<typeof predictConfigSchema>;

export const certifyConfigSchema = z
  .object({
    /** Samples used to select the top class. */
    n0: z.number().int().min(1).default(100),
    /** Fresh samples used to lower-bound its probability. */
    n: z.number().int().min(1).default(10_000),
    ...common,
  })
  .strict();
export type CertifyConfig = z.infer<typeof certifyConfigSchema>;
export type CertifyConfigInput = z.input<typeof certifyConfigSchema>;

export interface CertifyResult {
  /** Top class c_A, or ABSTAIN (-1) when p̲_A < ½. */
  prediction: number;
  /** Certified L2 radius σ·Φ⁻¹(p̲_A); 0 when abstaining. */
  radius: number;
  /** Clopper–Pearson lower bound p̲_A on P(f(x + ε) = c_A) at level alpha (for the n0 guess). */
  pALower: number;
  /** Per-class counts of the n estimation samples. */
  counts: number[];
  /** Forward passes of the base classifier per noisy example: n0 + n. */
  forwardPasses: number;
  /** Seed of the generator the noise was drawn from. */
  seed: number;
}

/** Shape of one example `inputShape`, accepting x as `inputShape` or `[1, ...inputShape]`. */
function checkExample(fn: string, model: Classifier, x: tf.Tensor): void {
  const s = model.inputShape;
  const ok =
    (x.rank === s.length && s.every((d, i) => x.shape[i] === d)) ||
    (x.rank === s.length + 1 && x.shape[0] === 1 && s.every((d, i) => x.shape[i + 1] === d));
  check(ok, () => `${fn}: x must have shape [${s}] or [1,${s}], got [${x.shape}]`);
}

/**
 * Counts of f(x + ε) over `num` draws of ε ~ N(0, σ²I): `counts[c]` = number of noisy copies whose
 * base-classifier argmax is c. x is ONE example, shape `inputShape` or `[1, ...inputShape]`.
 *
 * The noisy copies are not clipped to `model.bounds`: the theorem is about the Gaussian
 * translation family x + ε on all of ℝᵈ, and the paper (and its base classifiers, trained with
 * unclipped Gaussian augmentation) feed x + ε as is. Clipping would silently replace f by
 * f∘clip — still certifiable, but a different classifier from the one trained and reported; to
 * smooth that one, wrap the Classifier explicitly.
 *
 * Counts accumulate on the device and are read once at the end. Does not dispose x.
 */
export async function sampleCounts(
  model: Classifier,
  x: tf.Tensor,
  num: number,
  sigma: number,
  batchSize: number,
  rng: Rng,
): Promise<number[]> {
  checkExample('sampleCounts', model, x);
  check(
    Number.isInteger(num) && num >= 0,
    () => `sampleCounts: num must be an integer >= 0, got ${num}`,
    'BAD_OPTION',
  );
  check(sigma > 0, () => `sampleCounts: sigma must be > 0, got ${sigma}`, 'BAD_OPTION');
  check(
    Number.isInteger(batchSize) && batchSize >= 1,
    () => `sampleCounts: batchSize must be an integer >= 1, got ${batchSize}`,
    'BAD_OPTION',
  );
  const shape = model.inputShape;
  const base = x.dataSync();
  const d = base.length;
  let counts = tf.zeros([model.numClasses], 'int32');
  for (let remaining = num; remaining > 0; remaining -= batchSize) {
    const b = Math.min(batchSize, remaining);
    // x + N(0, σ²) noise, drawn from rng in one pass (tfjs's randomNormal and a broadcast add
    // took a third as long as the forward pass itself on ONNX Runtime).
    const noisy = rng.fillNormal(new Float32Array(b * d), sigma);
    for (let e = 0; e < b; e++) {
      const o = e * d;
      for (let j = 0; j < d; j++) noisy[o + j] += base[j];
    }
    const [next, finite] = tf.tidy(() => {
      const logits = model.logits(tf.tensor(noisy, [b, ...shape]));
      const predictions = tf.argMax(logits, 1);
      return [
        tf.add(counts, tf.sum(tf.oneHot(predictions, model.numClasses), 0)),
        tf.all(tf.isFinite(logits)),
      ];
    });
    counts.dispose();
    counts = next;
    const ok = finite.dataSync()[0] === 1;
    finite.dispose();
    if (!ok) {
      counts.dispose();
      throw new ParryError(
        'BAD_INPUT',
        "sampleCounts: the model's logits are NaN or infinite on noisy copies; no certificate is computed from them",
      );
    }
  }
  const values = Array.from(await counts.data());
  counts.dispose();
  return values;
}

/** Indices of the largest and second-largest counts (ties go to the lower class index). */
function topTwo(counts: number[]): [number, number] {
  let a = 0;
  for (let c = 1; c < counts.length; c++) if (counts[c] > counts[a]) a = c;
  let b = a === 0 ? 1 : 0;
  for (let c = 0; c < counts.length; c++) if (c !== a && counts[c] > counts[b]) b = c;
  return [a, b];
}

/**
 * PREDICT: the smoothed classifier's class at x, or ABSTAIN. Draws n noisy copies; if the
 * two-sided binomial test of the top two counts n_A vs n_B (p = ½) has p-value > alpha, abstains.
 * Guarantee (Prop. 1): the returned class differs from g(x) with probability at most alpha.
 */
export async function predict(
  model: Classifier,
  x: tf.Tensor,
  config: PredictConfigInput,
  rng: Rng,
): Promise<number> {
  const c = parseWith('predict', predictConfigSchema, config);
  const counts = await sampleCounts(model, x, c.n, c.sigma, c.batchSize, rng);
  if (model.numClasses < 2) return 0;
  const [a, b] = topTwo(counts);
  const nA = counts[a];
  const nB = counts[b];
  return binomialTestPValue(nA, nA + nB, 0.5) > c.alpha ? ABSTAIN : a;
}

/**
 * CERTIFY: picks ĉ_A from n0 noisy copies, then lower-bounds p_A = P(f(x + ε) = ĉ_A) by the
 * one-sided Clopper–Pearson bound p̲_A at level alpha from n fresh copies. If p̲_A < ½ it abstains;
 * otherwise it returns ĉ_A with radius R = σ·Φ⁻¹(p̲_A). Guarantee (Prop. 2): with probability at
 * least 1 − alpha over the noise, g(x + δ) = ĉ_A for all ‖δ‖₂ < R.
 */
export async function certify(
  model: Classifier,
  x: tf.Tensor,
  config: CertifyConfigInput,
  rng: Rng,
): Promise<CertifyResult> {
  const c = parseWith('certify', certifyConfigSchema, config);
  const seed = rng.seed;
  const counts0 = await sampleCounts(model, x, c.n0, c.sigma, c.batchSize, rng);
  const [cA] = topTwo(counts0);
  const counts = await sampleCounts(model, x, c.n, c.sigma, c.batchSize, rng);
  const pALower = clopperPearsonLower(counts[cA], c.n, c.alpha);
  const forwardPasses = c.n0 + c.n;
  if (pALower < 0.5)
    return { prediction: ABSTAIN, radius: 0, pALower, counts, forwardPasses, seed };
  const radius = c.sigma * normalQuantile(pALower);
  return { prediction: cA, radius, pALower, counts, forwardPasses, seed };
}
