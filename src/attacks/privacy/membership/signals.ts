/**
 * Per-example membership signals from logits and true labels, in float64 and computed from the
 * logits through log-sum-exp, so none of them is ±Infinity however sure the model is:
 *
 * - `loss`: cross-entropy −log p_y (Yeom et al. 2018's signal; lower for members).
 * - `confidence`: p_y, the probability of the true class (higher for members).
 * - `modified-entropy`: Mentr = −(1 − p_y)·log p_y − Σ_{i≠y} p_i·log(1 − p_i) (Song & Mittal
 *   2021): entropy that also penalises confident wrong answers (lower for members).
 * - `logit-scaled-confidence`: φ = log(p_y / (1 − p_y)) = z_y − log Σ_{k≠y} e^{z_k} (Carlini
 *   et al. 2022): the signal LiRA fits Gaussians to, roughly normal across retrained models.
 *
 * Logits are row-major `[i·K + k]`; every function returns one value per example.
 */
import { check } from '../../../errors.js';

export const SIGNALS = [
  'loss',
  'confidence',
  'modified-entropy',
  'logit-scaled-confidence',
] as const;
export type SignalName = (typeof SIGNALS)[number];

/** Whether a larger value of the signal points to a member. */
export const HIGHER_IS_MEMBER: Record<SignalName, boolean> = {
  loss: false,
  confidence: true,
  'modified-entropy': false,
  'logit-scaled-confidence': true,
};

/** log Σ_{k≠skip} e^{row[k]} over `row = logits[o … o+K)`; skip = −1 sums every class. */
function logSumExp(logits: ArrayLike<number>, o: number, k: number, skip = -1): number {
  let m = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < k; c++) if (c !== skip && logits[o + c] > m) m = logits[o + c];
  let s = 0;
  for (let c = 0; c < k; c++) if (c !== skip) s += Math.exp(logits[o + c] - m);
  return m + Math.log(s);
}

function rows(logits: ArrayLike<number>, labels: ArrayLike<number>, k: number, fn: string): number {
  const n = labels.length;
  check(Number.isInteger(k) && k >= 2, () => `${fn}: numClasses must be an integer >= 2, got ${k}`);
  check(
    logits.length === n * k,
    () => `${fn}: ${logits.length} logits for ${n} labels × ${k} classes`,
  );
  return n;
}

/** log(1 + e^x) without overflow or loss of the small values. */
function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/** φ of row `o`: the true logit minus the log-sum-exp of the others. */
function phiOf(logits: ArrayLike<number>, o: number, k: number, y: number): number {
  return logits[o + y] - logSumExp(logits, o, k, y);
}

/**
 * log p_y at temperature `temperature` (logits divided by it), per example, as −softplus(−φ):
 * exact for p_y near 1 too, where log-sum-exp minus the true logit rounds to 0.
 */
export function trueClassLogProbability(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  k: number,
  temperature = 1,
): Float64Array {
  const n = rows(logits, labels, k, 'trueClassLogProbability');
  check(
    temperature > 0,
    () => `trueClassLogProbability: temperature must be > 0, got ${temperature}`,
  );
  const out = new Float64Array(n);
  const row = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < k; c++) row[c] = logits[i * k + c] / temperature;
    out[i] = -softplus(-phiOf(row, 0, k, labels[i]));
  }
  return out;
}

/** Cross-entropy −log p_y = softplus(−φ) per example. */
export function lossSignal(logits: ArrayLike<number>, labels: ArrayLike<number>, k: number) {
  const n = rows(logits, labels, k, 'lossSignal');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = softplus(-phiOf(logits, i * k, k, labels[i]));
  return out;
}

/** p_y = sigmoid(φ) per example. */
export function confidenceSignal(logits: ArrayLike<number>, labels: ArrayLike<number>, k: number) {
  const n = rows(logits, labels, k, 'confidenceSignal');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-phiOf(logits, i * k, k, labels[i])));
  return out;
}

/** φ = z_y − log Σ_{k≠y} e^{z_k} = log(p_y / (1 − p_y)) per example. */
export function logitScaledConfidence(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  k: number,
): Float64Array {
  const n = rows(logits, labels, k, 'logitScaledConfidence');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = phiOf(logits, i * k, k, labels[i]);
  return out;
}

/** Song & Mittal's modified entropy per example (0 for a certain right answer). */
export function modifiedEntropySignal(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  k: number,
): Float64Array {
  const n = rows(logits, labels, k, 'modifiedEntropySignal');
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    const y = labels[i];
    const lse = logSumExp(logits, o, k);
    const phi = phiOf(logits, o, k, y);
    // −(1 − p_y)·log p_y = sigmoid(−φ)·softplus(−φ): exact when p_y rounds to 1.
    let m = softplus(-phi) / (1 + Math.exp(phi));
    for (let c = 0; c < k; c++) {
      if (c === y) continue;
      const p = Math.exp(logits[o + c] - lse);
      // log(1 − p): log1p for small p, the other classes' log-mass when p is near 1.
      const log1mp = p < 0.5 ? Math.log1p(-p) : logSumExp(logits, o, k, c) - lse;
      m -= p * log1mp;
    }
    out[i] = m;
  }
  return out;
}

const COMPUTE: Record<
  SignalName,
  (logits: ArrayLike<number>, labels: ArrayLike<number>, k: number) => Float64Array
> = {
  loss: lossSignal,
  confidence: confidenceSignal,
  'modified-entropy': modifiedEntropySignal,
  'logit-scaled-confidence': logitScaledConfidence,
};

/** The signal called `name` per example. */
export function computeSignal(
  name: SignalName,
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  k: number,
): Float64Array {
  return COMPUTE[name](logits, labels, k);
}

/**
 * The signal oriented so that higher means member (negated for loss and modified entropy), per
 * query `[q][i]`, for the first query only when `augmented` is false.
 */
export function orientedSignal(
  name: SignalName,
  logits: readonly ArrayLike<number>[],
  labels: ArrayLike<number>,
  k: number,
  augmented: boolean,
): Float64Array[] {
  const sign = HIGHER_IS_MEMBER[name] ? 1 : -1;
  return (augmented ? logits : logits.slice(0, 1)).map((l) =>
    computeSignal(name, l, labels, k).map((v) => sign * v),
  );
}

/** Per example, the mean over queries of `perQuery[q][i]`. */
export function meanOverQueries(perQuery: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(perQuery[0].length);
  for (const a of perQuery) for (let i = 0; i < out.length; i++) out[i] += a[i];
  for (let i = 0; i < out.length; i++) out[i] /= perQuery.length;
  return out;
}
