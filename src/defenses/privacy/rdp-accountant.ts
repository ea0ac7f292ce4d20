/**
 * Rényi-DP accountant for the sampled Gaussian mechanism (SGM): each step adds N(0, σ²) noise to
 * a sum of terms of L2 sensitivity 1 over a Poisson sample (each example in with probability q),
 * as DP-SGD does with σ = noise multiplier (Abadi et al. 2016).
 *
 * RDP of one step at order α (Mironov 2017; Mironov, Talwar & Zhang 2019) is log(A_α) / (α − 1)
 * with A_α = E_{z∼μ0}[(μ(z)/μ0(z))^α], μ0 = N(0, σ²), μ = (1 − q)·μ0 + q·N(1, σ²). For integer α
 * it is a finite binomial sum; for fractional α two alternating series with erfc tails (Mironov
 * et al. 2019, Sec. 3.3). Everything is summed in log space, so orders up to 512 and more neither
 * overflow nor lose the small terms. T steps compose to T·RDP(α), and an order converts to
 * (ε, δ)-DP two ways, both minimised over the order grid:
 * - classic (Mironov 2017, Prop. 3): ε = T·RDP(α) + log(1/δ) / (α − 1);
 * - Balle et al. 2020 (Thm. 21): ε = T·RDP(α) + log((α − 1)/α) − (log δ + log α) / (α − 1),
 *   never larger than the classic one for α > 1 (what TF Privacy's dp_accounting and Opacus
 *   report today).
 */
import { z } from 'zod';
import { ParryError } from '../../errors.js';
import { parseWith } from '../../options.js';

/**
 * The order grid of TF Privacy's compute_dp_sgd_privacy (and of dp_accounting for DP-SGD):
 * 1.25 … 4.5 in steps of 0.25/0.5, every integer 5 … 63, then 128, 256, 512.
 */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  1.25,
  1.5,
  1.75,
  2,
  2.25,
  2.5,
  3,
  3.5,
  4,
  4.5,
  ...Array.from({ length: 59 }, (_, i) => i + 5),
  128,
  256,
  512,
]);

export const epsilonSchema = z.strictObject({
  /** σ: noise standard deviation over the L2 sensitivity (the clipping norm in DP-SGD). */
  noiseMultiplier: z.number().refine((v) => v > 0 && Number.isFinite(v), {
    error: (i) => `must be > 0, got ${String(i.input)}`,
  }),
  /** q: the probability that an example is in a step's batch. */
  sampleRate: z.number().refine((v) => v > 0 && v <= 1, {
    error: (i) => `must be in (0, 1], got ${String(i.input)}`,
  }),
  steps: z.number().refine((v) => Number.isInteger(v) && v >= 1, {
    error: (i) => `must be an integer >= 1, got ${String(i.input)}`,
  }),
  delta: z.number().refine((v) => v > 0 && v < 1, {
    error: (i) => `must be in (0, 1), got ${String(i.input)}`,
  }),
  orders: z
    .array(
      z.number().refine((v) => v > 1 && Number.isFinite(v), {
        error: (i) => `orders must be finite and > 1, got ${String(i.input)}`,
      }),
    )
    .min(1)
    .optional(),
});
export type EpsilonInput = z.input<typeof epsilonSchema>;

export interface EpsilonResult {
  /** ε by the classic conversion, minimised over the orders, and the order that gave it. */
  epsilon: number;
  order: number;
  /** ε by the conversion of Balle et al. 2020 (never larger), and its order. */
  epsilonBalle: number;
  orderBalle: number;
}

/**
 * (ε, δ) of DP-SGD: `steps` sampled Gaussian steps with noise multiplier σ and sample rate q.
 * Bad input (δ outside (0, 1), σ ≤ 0, q outside (0, 1], steps < 1) is a BAD_OPTION naming the
 * field. An optimum at the largest or smallest order means the grid should be widened.
 */
export function epsilonFor(input: EpsilonInput): EpsilonResult {
  const p = parseWith('epsilonFor', epsilonSchema, input);
  const orders = p.orders ?? DEFAULT_ORDERS;
  const rdp = orders.map((a) => p.steps * rdpSampledGaussian(p.sampleRate, p.noiseMultiplier, a));
  const classic = minOver(orders, rdp, (a, r) => r + Math.log(1 / p.delta) / (a - 1));
  const balle = minOver(
    orders,
    rdp,
    (a, r) => r + Math.log1p(-1 / a) - (Math.log(p.delta) + Math.log(a)) / (a - 1),
  );
  return {
    epsilon: classic.value,
    order: classic.order,
    epsilonBalle: Math.max(0, balle.value),
    orderBalle: balle.order,
  };
}

/**
 * Steps of `epochs` passes at sample rate q: ⌈epochs / q⌉, as TF Privacy counts
 * ⌈epochs·n / batch⌉. A quotient within 1e-9 (relative) of an integer is that integer, so that
 * 60 / 0.004 is 15000 steps and not 15001 from float rounding.
 */
export function stepsForEpochs(epochs: number, sampleRate: number): number {
  if (!(epochs > 0 && Number.isFinite(epochs)))
    throw new ParryError('BAD_OPTION', `stepsForEpochs: epochs must be > 0, got ${epochs}`);
  if (!(sampleRate > 0 && sampleRate <= 1))
    throw new ParryError(
      'BAD_OPTION',
      `stepsForEpochs: sampleRate must be in (0, 1], got ${sampleRate}`,
    );
  const t = epochs / sampleRate;
  const r = Math.round(t);
  return Math.abs(t - r) <= 1e-9 * t ? Math.max(1, r) : Math.ceil(t);
}

function minOver(
  orders: readonly number[],
  rdp: readonly number[],
  epsAt: (order: number, rdp: number) => number,
): { value: number; order: number } {
  let best = { value: Number.POSITIVE_INFINITY, order: orders[0] };
  orders.forEach((a, i) => {
    const e = epsAt(a, rdp[i]);
    if (e < best.value) best = { value: e, order: a };
  });
  return best;
}

/** RDP at order α (> 1) of one step of the sampled Gaussian mechanism. */
export function rdpSampledGaussian(q: number, sigma: number, alpha: number): number {
  if (q === 1) return alpha / (2 * sigma * sigma);
  const logA = Number.isInteger(alpha)
    ? logAInteger(q, sigma, alpha)
    : logAFractional(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** log(e^a + e^b). */
function logAdd(a: number, b: number): number {
  const hi = Math.max(a, b);
  const lo = Math.min(a, b);
  if (lo === Number.NEGATIVE_INFINITY) return hi;
  return hi + Math.log1p(Math.exp(lo - hi));
}

/** log(e^a − e^b), a ≥ b. */
function logSub(a: number, b: number): number {
  if (b === Number.NEGATIVE_INFINITY) return a;
  if (a < b) throw new ParryError('INTERNAL', 'rdp: a partial sum of A_alpha went negative');
  if (a === b) return Number.NEGATIVE_INFINITY;
  return a + Math.log(-Math.expm1(b - a));
}

/**
 * log A_α for integer α: log Σ_{i=0..α} C(α, i)·q^i·(1 − q)^(α−i)·exp((i² − i) / (2σ²)), the
 * binomial expansion of E_μ0[((1 − q) + q·μ1/μ0)^α] with E_μ0[(μ1/μ0)^i] = exp((i² − i)/(2σ²)).
 */
function logAInteger(q: number, sigma: number, alpha: number): number {
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let logBinom = 0; // log C(α, 0)
  let logA = Number.NEGATIVE_INFINITY;
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const term = logBinom + i * lq + (alpha - i) * l1q + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, term);
  }
  return logA;
}

/**
 * log A_α for fractional α: the integral of μ0·(μ/μ0)^α split at z0 = σ²·log(1/q − 1) + 1/2,
 * where μ1/μ0 crosses (1 − q)/q; each half expands in a generalised binomial series whose terms
 * carry Gaussian tail masses (erfc). Summed until both terms fall below e^−30.
 */
function logAFractional(q: number, sigma: number, alpha: number): number {
  let logA0 = Number.NEGATIVE_INFINITY;
  let logA1 = Number.NEGATIVE_INFINITY;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  const s2 = Math.SQRT2 * sigma;
  let logCoef = 0; // log |C(α, i)|, updated by C(α, i) = C(α, i − 1)·(α − i + 1)/i
  let positive = true;
  for (let i = 0; i < 100_000; i++) {
    if (i > 0) {
      const f = alpha - i + 1;
      logCoef += Math.log(Math.abs(f)) - Math.log(i);
      if (f < 0) positive = !positive;
    }
    const j = alpha - i;
    const logS0 =
      logCoef +
      i * lq +
      j * l1q +
      (i * i - i) / (2 * sigma * sigma) +
      Math.log(0.5) +
      logErfc((i - z0) / s2);
    const logS1 =
      logCoef +
      j * lq +
      i * l1q +
      (j * j - j) / (2 * sigma * sigma) +
      Math.log(0.5) +
      logErfc((z0 - j) / s2);
    if (positive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) return logAdd(logA0, logA1);
  }
  throw new ParryError('INTERNAL', `rdp: the series for order ${alpha} did not converge`);
}

/**
 * log erfc(x) in float64, accurate far into the tail (x up to 1e150): a positive-term series of
 * erf for |x| < 2, the continued fraction erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + …)))
 * beyond, evaluated by the modified Lentz method.
 */
export function logErfc(x: number): number {
  if (x >= 2) return -x * x - 0.5 * Math.log(Math.PI) + Math.log(erfcContinuedFraction(x));
  if (x <= -2) return Math.log(2 - Math.exp(logErfc(-x)));
  return Math.log(1 - erfSeries(x));
}

/** erf(x) = 2/√π · e^(−x²) · Σ_n 2^n x^(2n+1) / (1·3·…·(2n+1)): all terms of one sign. */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x) * sum;
}

/** 1 / (x + (1/2)/(x + (2/2)/(x + (3/2)/(x + …)))) for x ≥ 2. */
function erfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 10_000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (d === 0) d = tiny;
    c = x + a / c;
    if (c === 0) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return 1 / f;
}
