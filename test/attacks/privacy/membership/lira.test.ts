import { describe, expect, it } from 'vitest';
import { normalLogSurvival } from '../../../../src/attacks/privacy/membership/gaussian-fit.js';
import { fitSide, lira, liraSchema } from '../../../../src/attacks/privacy/membership/lira.js';
import type { MembershipInput } from '../../../../src/attacks/privacy/membership/membership.js';
import { membershipMetrics } from '../../../../src/attacks/privacy/membership/roc.js';
import {
  thresholdAttack,
  thresholdSchema,
} from '../../../../src/attacks/privacy/membership/threshold.js';
import { Rng } from '../../../../src/engine/rng.js';
import { logitsFromPhi, synthetic } from './synthetic.js';

const K = 5;

/**
 * log P(Z > u) by Simpson's rule on P(Z > u) = φ(u)·∫₀^∞ e^{−us − s²/2} ds (u ≥ 0), and
 * 1 − P(Z > −u) below 0: a computation independent of the library's series and fraction.
 */
function logSurvivalByQuadrature(u: number): number {
  if (u < 0) return Math.log(1 - Math.exp(logSurvivalByQuadrature(-u)));
  const f = (s: number) => Math.exp(-u * s - (s * s) / 2);
  const [hi, steps] = [40, 200000];
  const h = hi / steps;
  let acc = f(0) + f(hi);
  for (let t = 1; t < steps; t++) acc += (t % 2 ? 4 : 2) * f(t * h);
  return -(u * u) / 2 - 0.5 * Math.log(2 * Math.PI) + Math.log((acc * h) / 3);
}

/** Naive φ from probabilities (moderate logits only). */
function naivePhi(logits: ArrayLike<number>, i: number, y: number): number {
  const e = Array.from({ length: K }, (_, c) => Math.exp(logits[i * K + c]));
  const p = e[y] / e.reduce((a, b) => a + b, 0);
  return Math.log(p) - Math.log(1 - p);
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function std(v: number[]): number {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
}

const logPdf = (x: number, mu: number, s: number) =>
  Math.log(Math.exp(-((x - mu) ** 2) / (2 * s * s)) / (s * Math.sqrt(2 * Math.PI)));

/**
 * LiRA written out per example in plain arrays: the oracle the library is compared with.
 * `sigma` fixes both stds (fixed variance); otherwise per example and query.
 */
function oracle(input: MembershipInput, mode: 'online' | 'offline', sigma?: number): number[] {
  const n = input.labels.length;
  return Array.from({ length: n }, (_, i) => {
    const y = input.labels[i];
    let total = 0;
    for (let q = 0; q < input.target.length; q++) {
      const side = (s: number) =>
        input.references
          .filter((_, j) => input.referenceMembership[j][i] === s)
          .map((r) => naivePhi(r[q], i, y));
      const [ins, outs] = [side(1), side(0)];
      const x = naivePhi(input.target[q], i, y);
      const sOut = sigma ?? std(outs);
      if (mode === 'online') {
        total += logPdf(x, median(ins), sigma ?? std(ins)) - logPdf(x, median(outs), sOut);
      } else {
        total -= logSurvivalByQuadrature((x - median(outs)) / sOut);
      }
    }
    return total / input.target.length;
  });
}

/** Outputs where every example is IN for exactly half of `refs` reference models. */
function balanced(n: number, refs: number, queries: number, seed: number): MembershipInput {
  const rng = new Rng(seed);
  const labels = Int32Array.from({ length: n }, () => rng.int(K));
  const d = Float64Array.from({ length: n }, () => rng.normal());
  const membership = Array.from({ length: refs }, () => new Uint8Array(n));
  for (let i = 0; i < n; i++) {
    const p = rng.permutation(refs);
    for (let t = 0; t < refs / 2; t++) membership[p[t]][i] = 1;
  }
  const model = (row: (i: number) => number) =>
    Array.from({ length: queries }, (_, q) =>
      logitsFromPhi(
        Float64Array.from(
          { length: n },
          (_, i) => d[i] + 1.5 * row(i) + 0.1 * q + 0.6 * rng.normal(),
        ),
        labels,
        K,
      ),
    );
  return {
    numClasses: K,
    labels,
    target: model((i) => i % 2),
    references: membership.map((m) => model((i) => m[i])),
    referenceMembership: membership,
  };
}

describe('normalLogSurvival', () => {
  it('matches quadrature across both tails and stays finite far out', () => {
    for (const u of [-6, -3.5, -3, -1, 0, 0.7, 2.9, 3, 3.1, 5, 8, 15]) {
      expect(normalLogSurvival(u)).toBeCloseTo(logSurvivalByQuadrature(u), 10);
    }
    // Far tail: log P(Z > u) = −u²/2 − log(u√(2π)) − log(1 + 1/u² …); relative 1e-12 at u = 40.
    const u = 40;
    const asymptotic =
      -(u * u) / 2 -
      Math.log(u * Math.sqrt(2 * Math.PI)) +
      Math.log(1 - 1 / u ** 2 + 3 / u ** 4 - 15 / u ** 6);
    expect(normalLogSurvival(u) / asymptotic).toBeCloseTo(1, 12);
    expect(normalLogSurvival(-40)).toBe(-0);
  });
});

describe('lira', () => {
  const input = balanced(60, 8, 2, 3);
  const base = liraSchema.parse({});

  it('fits each side per example and query: median and population std', () => {
    const phi = input.references.map((r) =>
      r.map((l) => Float64Array.from({ length: 60 }, (_, i) => naivePhi(l, i, input.labels[i]))),
    );
    for (const side of [0, 1] as const) {
      const f = fitSide(phi, input.referenceMembership, side, base);
      for (let q = 0; q < 2; q++) {
        for (let i = 0; i < 60; i++) {
          const obs = phi
            .filter((_, j) => input.referenceMembership[j][i] === side)
            .map((p) => p[q][i]);
          expect(f.mean[q][i]).toBeCloseTo(median(obs), 9);
          expect(f.std[q][i]).toBeCloseTo(std(obs), 9);
        }
      }
      expect(Array.from(f.count)).toEqual(new Array(60).fill(4));
    }
  });

  it('online: per-example per-query Gaussian fits and likelihood ratio, as the oracle', () => {
    const r = lira(input, base);
    const want = oracle(input, 'online');
    for (let i = 0; i < 60; i++) expect(r.scores[i]).toBeCloseTo(want[i], 8);
    for (let i = 0; i < 60; i++) expect(r.decisions?.[i]).toBe(r.scores[i] >= 0 ? 1 : 0);
    expect(r.details.inModels).toEqual([4, 4]);
    // 8 reference models: only the advice to fix the variance.
    expect(r.warnings).toEqual([
      'per-example variances from 8 reference models are noisy: Carlini et al. fix the variance below 64 (fixedVariance=true)',
    ]);
    expect(lira(input, { ...base, fixedVariance: true }).warnings).toEqual([]);
  });

  it('offline: one-sided −log survival under the OUT Gaussian, as the oracle', () => {
    const r = lira(input, { ...base, mode: 'offline' });
    const want = oracle(input, 'offline');
    for (let i = 0; i < 60; i++) expect(r.scores[i]).toBeCloseTo(want[i], 7);
    expect(r.decisions).toBeUndefined();
  });

  it('fixed variance: the std of all IN observations online, of all OUT ones offline', () => {
    const all = (s: number) =>
      input.references.flatMap((ref, j) =>
        ref.flatMap((l) =>
          Array.from({ length: 60 }, (_, i) => i)
            .filter((i) => input.referenceMembership[j][i] === s)
            .map((i) => naivePhi(l, i, input.labels[i])),
        ),
      );
    const on = lira(input, { ...base, fixedVariance: true });
    const onWant = oracle(input, 'online', std(all(1)));
    const off = lira(input, { ...base, fixedVariance: true, mode: 'offline' });
    const offWant = oracle(input, 'offline', std(all(0)));
    for (let i = 0; i < 60; i++) {
      expect(on.scores[i]).toBeCloseTo(onWant[i], 7);
      expect(off.scores[i]).toBeCloseTo(offWant[i], 7);
    }
  });

  it('uses only the first query unless augmented', () => {
    const one = lira(input, { ...base, augmented: false });
    const want = oracle(
      {
        ...input,
        target: input.target.slice(0, 1),
        references: input.references.map((r) => r.slice(0, 1)),
      },
      'online',
    );
    for (let i = 0; i < 60; i++) expect(one.scores[i]).toBeCloseTo(want[i], 8);
  });

  it('guards: one observation takes the global std, zero spread is floored, none is refused', () => {
    const m = input.referenceMembership.map((row) => Uint8Array.from(row));
    // Example 0: IN for reference 0 only.
    for (let j = 0; j < 8; j++) m[j][0] = j === 0 ? 1 : 0;
    const one = lira({ ...input, referenceMembership: m }, base);
    expect(one.warnings[0]).toMatch(/^2 IN fits had fewer than 2 observations: global std used/);
    expect(Number.isFinite(one.scores[0])).toBe(true);
    // Every reference gives example 1 the same outputs: std 0 → minStd.
    const same = { ...input, references: input.references.map(() => input.references[0]) };
    const flat = lira(same, base);
    expect(flat.warnings.some((w) => /stds raised to minStd 0.001/.test(w))).toBe(true);
    expect(flat.scores.every(Number.isFinite)).toBe(true);
    // No IN model for example 3: online refuses, offline still scores.
    for (let j = 0; j < 8; j++) m[j][3] = 0;
    expect(() => lira({ ...input, referenceMembership: m }, base)).toThrow(
      /lira: example 3 has no IN reference model \(of 8\); use mode 'offline' or train more/,
    );
    expect(
      lira({ ...input, referenceMembership: m }, { ...base, mode: 'offline' }).scores[3],
    ).toBeTypeOf('number');
    for (let j = 0; j < 8; j++) m[j][3] = 1;
    expect(() => lira({ ...input, referenceMembership: m }, { ...base, mode: 'offline' })).toThrow(
      /example 3 has no OUT reference model/,
    );
  });

  it('beats the loss attack at low FPR when examples differ in difficulty', () => {
    const s = synthetic({ n: 4000, references: 16, spread: 3, shift: 1.5, noise: 0.4, seed: 8 });
    const l = membershipMetrics(lira(s.input, base).scores, s.targetMembership);
    const loss = membershipMetrics(
      thresholdAttack('loss', s.input, thresholdSchema.parse({})).scores,
      s.targetMembership,
    );
    expect(l.auc).toBeGreaterThan(0.9);
    expect(loss.auc).toBeLessThan(0.75);
    expect(l.tprAt['0.01']).toBeGreaterThan(3 * loss.tprAt['0.01']);
  });
});
