import { describe, expect, it } from 'vitest';
import {
  binomialTestPValue,
  clopperPearsonInterval,
  clopperPearsonLower,
  normalCdf,
  normalQuantile,
  regularizedBeta,
} from '../../src/certify/stats.js';
import { ParryError } from '../../src/errors.js';

function expectRel(actual: number, expected: number, tol: number) {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(tol * Math.abs(expected));
}

/** Independent Φ: ½ + ∫₀^z φ(t) dt by composite Simpson's rule (error ~1e-16 at 4000 panels). */
function simpsonCdf(z: number): number {
  const m = 4000;
  const h = z / m;
  const phi = (t: number) => Math.exp((-t * t) / 2) / Math.sqrt(2 * Math.PI);
  let s = phi(0) + phi(z);
  for (let i = 1; i < m; i++) s += (i % 2 ? 4 : 2) * phi(i * h);
  return 0.5 + (s * h) / 3;
}

/**
 * Independent binomial tail P(X ≥ k), X ~ Bin(n, p): pmf from the ratio recurrence
 * pmf(i+1)/pmf(i) = (n−i)/(i+1)·p/(1−p) starting at the mode, normalised by the total
 * (no gamma functions, no incomplete beta).
 */
function upperTail(k: number, n: number, p: number): number {
  const mode = Math.min(n, Math.floor((n + 1) * p));
  const w = new Float64Array(n + 1);
  w[mode] = 1;
  const r = p / (1 - p);
  for (let i = mode; i < n; i++) w[i + 1] = (w[i] * (n - i) * r) / (i + 1);
  for (let i = mode; i > 0; i--) w[i - 1] = (w[i] * i) / ((n - i + 1) * r);
  let total = 0;
  let tail = 0;
  for (let i = 0; i <= n; i++) {
    total += w[i];
    if (i >= k) tail += w[i];
  }
  return tail / total;
}

/** Clopper–Pearson lower bound by bisection on p of P(X ≥ k; n, p) = alpha. */
function bisectLower(k: number, n: number, alpha: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-16; i++) {
    const mid = (lo + hi) / 2;
    if (upperTail(k, n, mid) < alpha) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Exact two-sided binomial test at p = ½ with BigInt binomial coefficients. */
function exactBinomTest(k: number, n: number): number {
  const choose: bigint[] = [1n];
  for (let i = 1; i <= n; i++) choose.push((choose[i - 1] * BigInt(n - i + 1)) / BigInt(i));
  let sum = 0n;
  for (const c of choose) if (c <= choose[k]) sum += c; // ties in C(n, i) are exact
  const scale = 2n ** BigInt(n);
  // float division of two big integers, keeping ~17 significant digits
  const digits = 10n ** 20n;
  return Math.min(1, Number((sum * digits) / scale) / 1e20);
}

describe('normal distribution', () => {
  it('matches table values (Abramowitz & Stegun 26.2; scipy.stats.norm)', () => {
    expectRel(normalQuantile(0.975), 1.959963984540054, 1e-13);
    expectRel(normalQuantile(0.999), 3.090232306167813, 1e-13);
    expectRel(normalQuantile(0.025), -1.959963984540054, 1e-13);
    expectRel(normalCdf(1), 0.8413447460685429, 1e-14);
    expectRel(normalCdf(-1), 0.15865525393145705, 1e-13);
    expect(normalQuantile(0.5)).toBe(0);
    expect(normalQuantile(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(normalQuantile(1)).toBe(Number.POSITIVE_INFINITY);
  });

  it('Φ agrees with Simpson integration of the density', () => {
    for (const z of [-6, -4.5, -3, -2.2, -1.9, -1, -0.3, 0, 0.7, 1.5, 2.5, 4]) {
      expect(Math.abs(normalCdf(z) - simpsonCdf(z))).toBeLessThan(1e-14);
    }
  });

  it('Φ⁻¹ inverts Φ to ~1e-13 relative, including far tails', () => {
    for (const p of [1e-300, 1e-20, 1e-10, 1e-5, 0.001, 0.02425, 0.1, 0.3, 0.5, 0.9, 0.999999]) {
      const z = normalQuantile(p);
      const back = p > 0.5 ? 1 - normalCdf(-z) : normalCdf(z);
      expectRel(back, p, 1e-12);
    }
  });
});

describe('Clopper–Pearson', () => {
  it('lower bound matches bisection on the exact binomial tail', () => {
    const cases: [number, number, number][] = [
      [1, 10, 0.05],
      [5, 10, 0.05],
      [9, 10, 0.001],
      [990, 1000, 0.05],
      [500, 1000, 0.001],
      [8413, 10_000, 0.001],
      [99_000, 100_000, 0.001],
    ];
    for (const [k, n, alpha] of cases) {
      expectRel(clopperPearsonLower(k, n, alpha), bisectLower(k, n, alpha), 1e-9);
    }
  });

  it('has closed forms at k = 0 and k = n', () => {
    expect(clopperPearsonLower(0, 50, 0.01)).toBe(0);
    for (const n of [1, 7, 1000, 100_000]) {
      expectRel(clopperPearsonLower(n, n, 0.001), 0.001 ** (1 / n), 1e-13);
    }
    const [lo, hi] = clopperPearsonInterval(0, 20, 0.05);
    expect(lo).toBe(0);
    expectRel(hi, 1 - 0.025 ** (1 / 20), 1e-12);
    const [lo2, hi2] = clopperPearsonInterval(20, 20, 0.05);
    expectRel(lo2, 0.025 ** (1 / 20), 1e-12);
    expect(hi2).toBe(1);
  });

  it('two-sided interval puts alpha/2 in each tail', () => {
    const [lo, hi] = clopperPearsonInterval(37, 120, 0.05);
    expectRel(lo, bisectLower(37, 120, 0.025), 1e-9);
    // upper bound u solves P(X ≤ k; n, u) = alpha/2
    expect(Math.abs(1 - upperTail(38, 120, hi) - 0.025)).toBeLessThan(1e-12);
    expect(lo).toBeLessThan(37 / 120);
    expect(hi).toBeGreaterThan(37 / 120);
  });

  it('I_x(a, b) matches the binomial tail identity I_p(k, n−k+1) = P(X ≥ k)', () => {
    for (const [k, n, p] of [
      [3, 10, 0.2],
      [60, 100, 0.55],
      [1, 40, 0.01],
    ]) {
      expectRel(regularizedBeta(p, k, n - k + 1), upperTail(k, n, p), 1e-12);
    }
  });

  it('rejects bad arguments', () => {
    expect(() => clopperPearsonLower(11, 10, 0.05)).toThrow(ParryError);
    expect(() => clopperPearsonLower(1.5, 10, 0.05)).toThrow(/k must be an integer/);
    expect(() => clopperPearsonLower(1, 10, 0)).toThrow(/alpha must be in \(0, 1\)/);
  });
});

describe('binomialTestPValue', () => {
  it('matches exact summation with BigInt binomial coefficients (p = ½)', () => {
    for (const [k, n] of [
      [0, 1],
      [1, 1],
      [5, 10],
      [3, 10],
      [10, 10],
      [60, 100],
      [40, 100],
      [50, 100],
      [75, 150],
      [90, 180],
      [120, 200],
    ]) {
      expectRel(binomialTestPValue(k, n), exactBinomTest(k, n), 1e-11);
    }
  });

  it('handles p ≠ ½ (direct pmf summation)', () => {
    // n = 3, p = 0.2: pmf = [0.512, 0.384, 0.096, 0.008]; k = 2 → 0.096 + 0.008
    expectRel(binomialTestPValue(2, 3, 0.2), 0.104, 1e-13);
    expectRel(binomialTestPValue(0, 3, 0.2), 1, 1e-15);
  });
});
