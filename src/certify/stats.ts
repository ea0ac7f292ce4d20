/**
 * Float64 statistics for certification, with no dependencies: the standard normal CDF Φ and
 * quantile Φ⁻¹, the regularized incomplete beta function and its quantile, Clopper–Pearson
 * intervals and the two-sided binomial test. Plain numbers in, plain numbers out.
 */
import { check } from '../errors.js';

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT1_2 = Math.SQRT1_2;
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/**
 * erfc(x) = 1 − erf(x), accurate to a few ulps relative for x ≥ 0 (and absolute for x < 0).
 * Below 2 the series erf(x) = 2/√π·e^{−x²}·Σ 2ⁿx^{2n+1}/(1·3···(2n+1)), which has only positive
 * terms; from 2 on the Laplace continued fraction e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …)))),
 * evaluated backwards, which keeps relative accuracy far into the tail.
 */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 0; n < 200 && term > 1e-17 * sum; n++) {
      term *= (2 * x2) / (2 * n + 3);
      sum += term;
    }
    return 1 - (2 / SQRT_PI) * Math.exp(-x2) * sum;
  }
  if (x > 27) return 0; // e^{-x²} underflows
  const terms = x < 3 ? 400 : x < 6 ? 150 : 60;
  let t = x;
  for (let k = terms; k >= 1; k--) t = x + k / 2 / t;
  return Math.exp(-x * x) / (SQRT_PI * t);
}

/** Standard normal CDF Φ(z), relative accuracy ~1e-15 in both tails. */
export function normalCdf(z: number): number {
  return z < 0 ? 0.5 * erfc(-z * SQRT1_2) : 1 - 0.5 * erfc(z * SQRT1_2);
}

// Acklam's rational approximation of Φ⁻¹ (relative error < 1.15e-9), refined below by Halley.
const A = [
  -3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2,
  -3.066479806614716e1, 2.506628277459239,
];
const B = [
  -5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1,
  -1.328068155288572e1,
];
const C = [
  -7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734,
  4.374664141464968, 2.938163982698783,
];
const D = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

/** Acklam's initial guess for Φ⁻¹(q), q in (0, 0.5]. */
function acklamLower(q: number): number {
  if (q < 0.02425) {
    const r = Math.sqrt(-2 * Math.log(q));
    return (
      (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5]) /
      ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1)
    );
  }
  const s = q - 0.5;
  const r = s * s;
  return (
    ((((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * s) /
    (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1)
  );
}

/**
 * Standard normal quantile Φ⁻¹(p) for p in [0, 1] (±Infinity at the ends): Acklam's
 * approximation refined by Halley steps on Φ(z) − q, always in the lower tail (p > ½ uses the
 * exact complement 1 − p and symmetry), so the result is accurate to ~1e-15 relative.
 */
export function normalQuantile(p: number): number {
  check(p >= 0 && p <= 1, () => `normalQuantile: p must be in [0, 1], got ${p}`, 'BAD_OPTION');
  if (p === 0) return Number.NEGATIVE_INFINITY;
  if (p === 1) return Number.POSITIVE_INFINITY;
  if (p > 0.5) return -normalQuantile(1 - p); // 1 − p is exact for p in [0.5, 1]
  let z = acklamLower(p);
  for (let i = 0; i < 3; i++) {
    const e = normalCdf(z) - p;
    const u = e * SQRT_2PI * Math.exp((z * z) / 2);
    const step = u / (1 + (z * u) / 2);
    z -= step;
    if (Math.abs(step) <= 1e-16 * Math.abs(z)) break;
  }
  return z;
}

// Lanczos approximation (g = 7, 9 terms), relative accuracy ~1e-15.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313,
  -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6,
  1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0. */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const y = x - 1;
  let a = LANCZOS[0];
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (y + i);
  const t = y + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction for I_x(a, b) (modified Lentz; Numerical Recipes §6.4). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 100_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b) = P(Beta(a, b) ≤ x), for a, b > 0. */
export function regularizedBeta(x: number, a: number, b: number): number {
  check(a > 0 && b > 0, () => `regularizedBeta: a, b must be > 0, got ${a}, ${b}`, 'BAD_OPTION');
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const logFront =
    logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  const front = Math.exp(logFront);
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(a, b, x)) / a;
  return 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/**
 * The q-quantile of Beta(a, b): the x with I_x(a, b) = q, found by bisection down to adjacent
 * floats (I_x is monotone, so this cannot fail to converge).
 */
export function betaQuantile(q: number, a: number, b: number): number {
  check(q >= 0 && q <= 1, () => `betaQuantile: q must be in [0, 1], got ${q}`, 'BAD_OPTION');
  if (q === 0) return 0;
  if (q === 1) return 1;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 1100; i++) {
    const mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (regularizedBeta(mid, a, b) < q) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

function checkCounts(fn: string, k: number, n: number): void {
  check(Number.isInteger(n) && n >= 1, () => `${fn}: n must be an integer >= 1, got ${n}`);
  check(
    Number.isInteger(k) && k >= 0 && k <= n,
    () => `${fn}: k must be an integer in [0, ${n}], got ${k}`,
  );
}

function checkAlpha(fn: string, alpha: number): void {
  check(alpha > 0 && alpha < 1, () => `${fn}: alpha must be in (0, 1), got ${alpha}`, 'BAD_OPTION');
}

/**
 * One-sided Clopper–Pearson lower confidence bound on a binomial proportion: with k successes
 * in n trials, P(p ≥ bound) ≥ 1 − alpha. It is the alpha-quantile of Beta(k, n − k + 1), and 0
 * when k = 0 (for k = n it equals alpha^(1/n)). This is `proportion_confint(k, n,
 * alpha=2*alpha, method="beta")[0]` in Cohen et al.'s code.
 */
export function clopperPearsonLower(k: number, n: number, alpha: number): number {
  checkCounts('clopperPearsonLower', k, n);
  checkAlpha('clopperPearsonLower', alpha);
  return k === 0 ? 0 : betaQuantile(alpha, k, n - k + 1);
}

/** Two-sided Clopper–Pearson interval at confidence 1 − alpha (alpha/2 in each tail). */
export function clopperPearsonInterval(k: number, n: number, alpha: number): [number, number] {
  checkCounts('clopperPearsonInterval', k, n);
  checkAlpha('clopperPearsonInterval', alpha);
  const lower = k === 0 ? 0 : betaQuantile(alpha / 2, k, n - k + 1);
  const upper = k === n ? 1 : betaQuantile(1 - alpha / 2, k + 1, n - k);
  return [lower, upper];
}

/**
 * Two-sided exact binomial test of H₀: success probability = p, given k successes in n
 * trials: the total probability of outcomes no more likely than k (with scipy's relative
 * tolerance 1e-7 for ties), capped at 1. This is `binom_test(k, n, p)` in Cohen et al.'s code.
 */
export function binomialTestPValue(k: number, n: number, p = 0.5): number {
  checkCounts('binomialTestPValue', k, n);
  check(p >= 0 && p <= 1, () => `binomialTestPValue: p must be in [0, 1], got ${p}`, 'BAD_OPTION');
  if (p === 0) return k === 0 ? 1 : 0;
  if (p === 1) return k === n ? 1 : 0;
  const logP = Math.log(p);
  const logQ = Math.log1p(-p);
  const logN = logGamma(n + 1);
  const logPmf = (i: number) =>
    logN - logGamma(i + 1) - logGamma(n - i + 1) + i * logP + (n - i) * logQ;
  const threshold = logPmf(k) + Math.log1p(1e-7);
  let sum = 0;
  for (let i = 0; i <= n; i++) {
    const l = logPmf(i);
    if (l <= threshold) sum += Math.exp(l);
  }
  return Math.min(1, sum);
}
