/**
 * The Shapiro–Wilk test of normality (Shapiro & Wilk 1965) with Royston's approximations for
 * 3 ≤ n ≤ 5000 (Royston 1992, "Approximating the Shapiro–Wilk W-test for non-normality", and the
 * algorithm AS R94, Royston 1995) — the test R's `shapiro.test` and SciPy's `stats.shapiro` run.
 *
 * W = (Σ aᵢ x₍ᵢ₎)² / Σ (xᵢ − x̄)², with x₍ᵢ₎ the sorted sample and a the normalised coefficients:
 * mᵢ = Φ⁻¹((i − 3/8)/(n + 1/4)); the two outermost (one for n ≤ 5) corrected by Royston's
 * polynomials in u = 1/√n, the rest −mᵢ/ε with ε making Σ aᵢ² = 1. W is near 1 for normal
 * samples and smaller the further the sample is from normal.
 *
 * p-value (upper tail of a normalising transform of 1 − W): n = 3 exactly,
 * (6/π)(asin √W − asin √¾); 4 ≤ n ≤ 11: −ln(γ − ln(1 − W)) with γ = −2.273 + 0.459n is normal with
 * mean and log-sd polynomials in n; n ≥ 12: ln(1 − W) is normal with mean and log-sd polynomials
 * in ln n.
 */
import { normalCdf, normalQuantile } from '../certify/stats.js';
import { check } from '../errors.js';

export interface ShapiroWilk {
  /** The statistic, in (0, 1]. */
  w: number;
  /** P(W' ≤ W) under normality (small: not normal). */
  p: number;
}

/** The largest sample the approximations are calibrated for. */
export const SHAPIRO_WILK_MAX_N = 5000;

// Royston's polynomial coefficients (AS R94), lowest order first.
const C1 = [0, 0.221157, -0.147981, -2.07119, 4.434685, -2.706056];
const C2 = [0, 0.042981, -0.293762, -1.752461, 5.682633, -3.582633];
const C3 = [0.544, -0.39978, 0.025054, -6.714e-4];
const C4 = [1.3822, -0.77857, 0.062767, -0.0020322];
const C5 = [-1.5861, -0.31082, -0.083751, 0.0038915];
const C6 = [-0.4803, -0.082676, 0.0030302];
const G = [-2.273, 0.459];

/** c₀ + c₁x + c₂x² + … */
function poly(c: readonly number[], x: number): number {
  let s = 0;
  for (let i = c.length - 1; i >= 0; i--) s = s * x + c[i];
  return s;
}

/**
 * The coefficients of the lower half, a₁ ≥ a₂ ≥ … ≥ a_{⌊n/2⌋} > 0 (the sorted sample's i-th value
 * from the bottom has weight −aᵢ, from the top +aᵢ; the middle value of an odd n has weight 0).
 */
export function shapiroWilkCoefficients(n: number): Float64Array {
  check(
    Number.isInteger(n) && n >= 3 && n <= SHAPIRO_WILK_MAX_N,
    () => `shapiroWilk: the sample size must be an integer in [3, ${SHAPIRO_WILK_MAX_N}], got ${n}`,
  );
  const half = Math.floor(n / 2);
  const a = new Float64Array(half);
  if (n === 3) {
    a[0] = Math.SQRT1_2;
    return a;
  }
  const m = new Float64Array(half);
  let sumM2 = 0;
  for (let i = 0; i < half; i++) {
    m[i] = normalQuantile((i + 1 - 0.375) / (n + 0.25)); // negative: the lower half
    sumM2 += m[i] * m[i];
  }
  sumM2 *= 2;
  const norm = Math.sqrt(sumM2);
  const u = 1 / Math.sqrt(n);
  const a1 = poly(C1, u) - m[0] / norm;
  let first: number;
  let eps: number;
  if (n > 5) {
    const a2 = poly(C2, u) - m[1] / norm;
    eps = Math.sqrt((sumM2 - 2 * m[0] ** 2 - 2 * m[1] ** 2) / (1 - 2 * a1 ** 2 - 2 * a2 ** 2));
    a[1] = a2;
    first = 2;
  } else {
    eps = Math.sqrt((sumM2 - 2 * m[0] ** 2) / (1 - 2 * a1 ** 2));
    first = 1;
  }
  a[0] = a1;
  for (let i = first; i < half; i++) a[i] = -m[i] / eps;
  return a;
}

/**
 * W and its p-value for `sample` (any order; 3 to 5000 finite values, not all equal). Float64
 * throughout; the sample is copied, never changed.
 */
export function shapiroWilk(sample: ArrayLike<number>): ShapiroWilk {
  const n = sample.length;
  const a = shapiroWilkCoefficients(n);
  const x = Float64Array.from(sample).sort();
  check(
    Number.isFinite(x[0]) && Number.isFinite(x[n - 1]),
    () => 'shapiroWilk: the sample holds a value that is not finite',
  );
  const range = x[n - 1] - x[0];
  check(range > 0, () => `shapiroWilk: all ${n} values are equal (${x[0]}): W is undefined`);
  // Scaled and centred by the range and mean, so W does not lose digits to large offsets.
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i] / range;
  mean /= n;
  // Squared correlation of the data with the (centred, unit) coefficient vector, computed as
  // 1 − W = (|a||x| − a·x)(|a||x| + a·x) / (|a|²|x|²) so W near 1 keeps its digits.
  let sa2 = 0;
  let sx2 = 0;
  let sax = 0;
  for (let i = 0; i < n; i++) {
    const j = n - 1 - i;
    const ai = i < j ? -a[i] : i > j ? a[j] : 0;
    const xi = x[i] / range - mean;
    sa2 += ai * ai;
    sx2 += xi * xi;
    sax += ai * xi;
  }
  const root = Math.sqrt(sa2 * sx2);
  const oneMinusW = Math.max(0, ((root - sax) * (root + sax)) / (sa2 * sx2));
  const w = 1 - oneMinusW;
  return { w, p: shapiroWilkP(w, oneMinusW, n) };
}

/** The p-value of W for a sample of n (Royston's normalising transforms). */
function shapiroWilkP(w: number, oneMinusW: number, n: number): number {
  if (n === 3) {
    // Exact: W is distributed on [3/4, 1] with P(W ≤ w) = (6/π)(asin √w − π/3).
    return Math.min(1, Math.max(0, (6 / Math.PI) * (Math.asin(Math.sqrt(w)) - Math.PI / 3)));
  }
  if (oneMinusW <= 0) return 1;
  let y = Math.log(oneMinusW);
  let mu: number;
  let sigma: number;
  if (n <= 11) {
    const gamma = poly(G, n);
    if (y >= gamma) return 1e-99; // beyond the transform's support: W far too small
    y = -Math.log(gamma - y);
    mu = poly(C3, n);
    sigma = Math.exp(poly(C4, n));
  } else {
    const ln = Math.log(n);
    mu = poly(C5, ln);
    sigma = Math.exp(poly(C6, ln));
  }
  return normalCdf(-(y - mu) / sigma);
}
