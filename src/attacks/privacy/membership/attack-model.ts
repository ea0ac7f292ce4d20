/**
 * The attack classifier of the shadow-model attack: a one-hidden-layer ReLU network (or, with
 * `hidden: 0`, logistic regression) with a sigmoid output, trained in float64 in JS with
 * minibatch Adam on the binary cross-entropy. The feature sets are a few to a few dozen columns,
 * so plain loops beat building tensors; everything random (initial weights, batch order) comes
 * from `seed`. Features are standardised with the training rows' mean and std.
 */

import { Rng } from '../../../engine/rng.js';
import { check } from '../../../errors.js';

export interface MlpConfig {
  /** Hidden ReLU units; 0 for logistic regression. */
  hidden: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** L2 penalty on the weights (not biases). */
  l2: number;
  seed: number;
}

export interface Mlp {
  d: number;
  hidden: number;
  mean: Float64Array;
  std: Float64Array;
  /** All parameters: w1 [d×h], b1 [h], w2 [h] (or [d] without a hidden layer), b2. */
  theta: Float64Array;
}

/** Offsets of the parameter blocks in `theta`. */
function layout(d: number, h: number) {
  const w1 = 0;
  const b1 = d * h;
  const w2 = b1 + h;
  const b2 = w2 + (h > 0 ? h : d);
  return { w1, b1, w2, b2, size: b2 + 1 };
}

/** Logit of one standardised row `x` (offset `o` in `z`); fills `act` with hidden activations. */
function forward(m: Mlp, z: Float64Array, o: number, act: Float64Array): number {
  const { d, hidden: h, theta } = m;
  const L = layout(d, h);
  let s = theta[L.b2];
  if (h === 0) {
    for (let j = 0; j < d; j++) s += theta[L.w2 + j] * z[o + j];
    return s;
  }
  for (let k = 0; k < h; k++) {
    let a = theta[L.b1 + k];
    for (let j = 0; j < d; j++) a += theta[L.w1 + j * h + k] * z[o + j];
    act[k] = Math.max(a, 0);
    s += theta[L.w2 + k] * act[k];
  }
  return s;
}

function standardise(rows: Float64Array, d: number, mean: Float64Array, std: Float64Array) {
  return rows.map((v, t) => (v - mean[t % d]) / std[t % d]);
}

/** Trains on `rows` (n × d, row-major) with labels 0/1. */
export function fitMlp(
  rows: Float64Array,
  labels: ArrayLike<number>,
  d: number,
  c: MlpConfig,
): Mlp {
  const n = labels.length;
  check(n > 0 && rows.length === n * d, () => `fitMlp: ${rows.length} values for ${n}×${d}`);
  const h = c.hidden;
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let t = 0; t < rows.length; t++) mean[t % d] += rows[t] / n;
  for (let t = 0; t < rows.length; t++) std[t % d] += (rows[t] - mean[t % d]) ** 2 / n;
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j]) || 1;
  const z = standardise(rows, d, mean, std);
  const L = layout(d, h);
  const rng = new Rng(c.seed);
  const theta = new Float64Array(L.size);
  // He initialisation for the ReLU layer, Glorot-like for the output; zero biases.
  for (let t = L.w1; t < L.b1; t++) theta[t] = rng.normal() * Math.sqrt(2 / d);
  if (h > 0) for (let k = 0; k < h; k++) theta[L.w2 + k] = rng.normal() * Math.sqrt(1 / h);
  const model: Mlp = { d, hidden: h, mean, std, theta };
  const g = new Float64Array(L.size);
  const m1 = new Float64Array(L.size);
  const m2 = new Float64Array(L.size);
  const act = new Float64Array(Math.max(h, 1));
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  let step = 0;
  for (let epoch = 0; epoch < c.epochs; epoch++) {
    const order = rng.permutation(n);
    for (let start = 0; start < n; start += c.batchSize) {
      const end = Math.min(n, start + c.batchSize);
      g.fill(0);
      for (let b = start; b < end; b++) {
        const o = order[b] * d;
        const e = 1 / (1 + Math.exp(-forward(model, z, o, act))) - labels[order[b]];
        g[L.b2] += e;
        if (h === 0) {
          for (let j = 0; j < d; j++) g[L.w2 + j] += e * z[o + j];
          continue;
        }
        for (let k = 0; k < h; k++) {
          g[L.w2 + k] += e * act[k];
          if (act[k] <= 0) continue;
          const gk = e * theta[L.w2 + k];
          g[L.b1 + k] += gk;
          for (let j = 0; j < d; j++) g[L.w1 + j * h + k] += gk * z[o + j];
        }
      }
      const size = end - start;
      step++;
      for (let t = 0; t < L.size; t++) {
        const isWeight = t < L.b1 || (t >= L.w2 && t < L.b2);
        const gt = g[t] / size + (isWeight ? c.l2 * theta[t] : 0);
        m1[t] = beta1 * m1[t] + (1 - beta1) * gt;
        m2[t] = beta2 * m2[t] + (1 - beta2) * gt * gt;
        const mh = m1[t] / (1 - beta1 ** step);
        const vh = m2[t] / (1 - beta2 ** step);
        theta[t] -= (c.learningRate * mh) / (Math.sqrt(vh) + eps);
      }
    }
  }
  return model;
}

/** The classifier's logit (log-odds of "member") for each row of `rows` (n × d). */
export function mlpLogits(model: Mlp, rows: Float64Array): Float64Array {
  const d = model.d;
  check(rows.length % d === 0, () => `mlpLogits: ${rows.length} values are not rows of ${d}`);
  const z = standardise(rows, d, model.mean, model.std);
  const act = new Float64Array(Math.max(model.hidden, 1));
  return Float64Array.from({ length: rows.length / d }, (_, i) => forward(model, z, i * d, act));
}
