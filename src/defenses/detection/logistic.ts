/**
 * A small L2-regularised logistic regression, fitted in float64 in JS (the feature sets here are
 * a few to a few hundred columns and a few thousand rows), then applied as a tfjs op so a
 * detector built on it stays differentiable in its features. Features are standardised with the
 * training mean and std; the score is the logit w·z + b (monotone in the probability).
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';

export interface LogisticConfig {
  /** L2 penalty on the weights (not the bias), per example. */
  l2: number;
  /** Full-batch Adam steps. */
  steps: number;
  learningRate: number;
}

export const DEFAULT_LOGISTIC: LogisticConfig = { l2: 1e-3, steps: 400, learningRate: 0.05 };

export interface LogisticModel {
  mean: Float64Array;
  std: Float64Array;
  w: Float64Array;
  b: number;
}

/**
 * Fits on `rows` (n rows of d features, row-major) with labels 0/1. Adam on the mean
 * log-loss; deterministic (zero start).
 */
export function fitLogistic(
  rows: Float64Array,
  labels: ArrayLike<number>,
  d: number,
  c: LogisticConfig = DEFAULT_LOGISTIC,
): LogisticModel {
  const n = labels.length;
  check(n > 0 && rows.length === n * d, () => `fitLogistic: ${rows.length} values for ${n}×${d}`);
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += rows[i * d + j] / n;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) std[j] += (rows[i * d + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]) || 1;
  const z = new Float64Array(n * d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) z[i * d + j] = (rows[i * d + j] - mean[j]) / std[j];
  const w = new Float64Array(d + 1); // last entry: bias
  const m = new Float64Array(d + 1);
  const v = new Float64Array(d + 1);
  const g = new Float64Array(d + 1);
  const [beta1, beta2] = [0.9, 0.999];
  for (let t = 1; t <= c.steps; t++) {
    g.fill(0);
    for (let i = 0; i < n; i++) {
      let s = w[d];
      for (let j = 0; j < d; j++) s += w[j] * z[i * d + j];
      const err = 1 / (1 + Math.exp(-s)) - labels[i];
      for (let j = 0; j < d; j++) g[j] += (err * z[i * d + j]) / n;
      g[d] += err / n;
    }
    for (let j = 0; j < d; j++) g[j] += c.l2 * w[j];
    for (let j = 0; j <= d; j++) {
      m[j] = beta1 * m[j] + (1 - beta1) * g[j];
      v[j] = beta2 * v[j] + (1 - beta2) * g[j] * g[j];
      const mh = m[j] / (1 - beta1 ** t);
      const vh = v[j] / (1 - beta2 ** t);
      w[j] -= (c.learningRate * mh) / (Math.sqrt(vh) + 1e-8);
    }
  }
  return { mean, std, w: w.slice(0, d), b: w[d] };
}

/** Logits `[batch]` for features `[batch, d]`, differentiable in the features. Caller owns it. */
export function logisticLogit(model: LogisticModel, features: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const d = model.w.length;
    // Fold the standardisation into the weights: w·(f − μ)/σ + b.
    const scaled = Float32Array.from(model.w, (wj, j) => wj / model.std[j]);
    let bias = model.b;
    for (let j = 0; j < d; j++) bias -= scaled[j] * model.mean[j];
    const out = tf.add(tf.matMul(features, tf.tensor2d(scaled, [d, 1])), bias);
    return tf.reshape(out, [-1]) as tf.Tensor1D;
  });
}
