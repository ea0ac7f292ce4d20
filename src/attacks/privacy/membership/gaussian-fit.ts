/**
 * The univariate Gaussian pieces LiRA needs, in float64: location and scale of a sample, the log
 * density, and the log survival function log P(Z > u) for a standard normal Z, accurate in both
 * tails (u = 40 gives −804.6, not −Infinity).
 */

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Median of `values` (the mean of the two middle values for an even count); NaN when empty. */
export function median(values: ArrayLike<number>): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  const s = Float64Array.from(values).sort();
  return n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/** Arithmetic mean; NaN when empty. */
export function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/** Population standard deviation (divisor n, about the mean); NaN when empty. */
export function populationStd(values: ArrayLike<number>): number {
  const m = mean(values);
  let s = 0;
  for (let i = 0; i < values.length; i++) s += (values[i] - m) ** 2;
  return Math.sqrt(s / values.length);
}

/** log of the N(mu, sigma²) density at x. */
export function normalLogPdf(x: number, mu: number, sigma: number): number {
  const z = (x - mu) / sigma;
  return -0.5 * z * z - Math.log(sigma) - LOG_SQRT_2PI;
}

/** P(Z > u) for 0 <= u <= 3 from Φ(u) = ½ + φ(u)·Σ u^(2n+1)/(2n+1)!!; for u <= 0 likewise. */
function survivalBySeries(u: number): number {
  let term = u;
  let sum = u;
  for (let n = 1; n < 500 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
    term *= (u * u) / (2 * n + 1);
    sum += term;
  }
  return 0.5 - Math.exp(-0.5 * u * u - LOG_SQRT_2PI) * sum;
}

/** log of Mills' ratio's continued fraction u + 1/(u + 2/(u + 3/(u + …))) for u >= 3. */
function logMillsDenominator(u: number): number {
  let t = u;
  for (let k = 400; k >= 1; k--) t = u + k / t;
  return Math.log(t);
}

/** log P(Z > u) for a standard normal Z, finite for every finite u. */
export function normalLogSurvival(u: number): number {
  if (u >= 3) return -0.5 * u * u - LOG_SQRT_2PI - logMillsDenominator(u);
  if (u > -3) return Math.log(survivalBySeries(u));
  // Lower tail: P(Z > u) = 1 − P(Z > −u), the latter tiny.
  return Math.log1p(-Math.exp(normalLogSurvival(-u)));
}
