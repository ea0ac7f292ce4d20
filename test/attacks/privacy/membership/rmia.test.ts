import { describe, expect, it } from 'vitest';
import type { MembershipInput } from '../../../../src/attacks/privacy/membership/membership.js';
import {
  logRatios,
  rmia,
  rmiaSchema,
  rmiaScoresFromRatios,
  tuneRmiaA,
} from '../../../../src/attacks/privacy/membership/rmia.js';
import { membershipMetrics } from '../../../../src/attacks/privacy/membership/roc.js';
import { synthetic } from './synthetic.js';

const base = rmiaSchema.parse({});

/** Softmax probability of the true class, naively, at temperature t. */
function prob(logits: ArrayLike<number>, i: number, y: number, k: number, t: number): number {
  const e = Array.from({ length: k }, (_, c) => Math.exp(logits[i * k + c] / t));
  return e[y] / e.reduce((a, b) => a + b, 0);
}

/** scipy's trim_mean: cut ⌊trim·n⌋ values from each end of the sorted list. */
function trimMean(v: number[], trim: number): number {
  const s = [...v].sort((a, b) => a - b);
  const cut = Math.floor(trim * s.length);
  const kept = s.slice(cut, s.length - cut);
  return kept.reduce((a, b) => a + b, 0) / kept.length;
}

/** RMIA by the paper's formulas in probability space, pair by pair: the oracle. */
function oracle(input: MembershipInput, c: typeof base): number[] {
  const k = input.numClasses;
  const p = input.population!;
  const ratio = (
    target: readonly ArrayLike<number>[],
    refs: readonly (readonly ArrayLike<number>[])[],
    member: readonly ArrayLike<number>[] | undefined,
    labels: ArrayLike<number>,
    q: number,
    i: number,
  ) => {
    const ps = refs
      .filter((_, j) => c.mode === 'online' || member === undefined || member[j][i] === 0)
      .map((r) => prob(r[q], i, labels[i], k, c.temperature));
    const m = trimMean(ps, c.trim);
    const px = c.mode === 'online' ? m : ((1 + c.a) * m + (1 - c.a)) / 2;
    return prob(target[q], i, labels[i], k, c.temperature) / px;
  };
  const queries = input.target.length;
  return Array.from({ length: input.labels.length }, (_, i) => {
    let dominated = 0;
    for (let z = 0; z < p.labels.length; z++) {
      let votes = 0;
      for (let q = 0; q < queries; q++) {
        const rx = ratio(
          input.target,
          input.references,
          input.referenceMembership,
          input.labels,
          q,
          i,
        );
        const rz = ratio(p.target, p.references, p.referenceMembership, p.labels, q, z);
        if (rx / rz >= c.gamma) votes++;
      }
      if (votes > queries / 2) dominated++;
    }
    return dominated / p.labels.length;
  });
}

/** Two-class logits with p(class 0) = p. */
const twoClass = (ps: number[]) =>
  Float32Array.from(ps.flatMap((p) => [Math.log(p), Math.log(1 - p)]));

describe('rmia ratios', () => {
  it('online averages every reference; offline the OUT ones through a (by hand)', () => {
    // Target 0.8; references 0.2 (OUT) and 0.6 (IN). Online Pr(x) = 0.4 → ratio 2.
    // Offline a = 0.5: Pr(x) = (1.5·0.2 + 0.5) / 2 = 0.4 → ratio 2; a = 1: Pr_OUT = 0.2 → 4.
    const lp = (p: number) => [Float64Array.of(Math.log(p))];
    const refs = [lp(0.2), lp(0.6)];
    const member = [[0], [1]];
    const on = logRatios(lp(0.8), refs, member, { mode: 'online', a: 0, trim: 0 }, 'x');
    expect(Math.exp(on[0][0])).toBeCloseTo(2, 12);
    const half = logRatios(lp(0.8), refs, member, { mode: 'offline', a: 0.5, trim: 0 }, 'x');
    expect(Math.exp(half[0][0])).toBeCloseTo(2, 12);
    const one = logRatios(lp(0.8), refs, member, { mode: 'offline', a: 1, trim: 0 }, 'x');
    expect(Math.exp(one[0][0])).toBeCloseTo(4, 12);
    // a = 0: Pr(x) = (0.2 + 1) / 2 = 0.6.
    const zero = logRatios(lp(0.8), refs, member, { mode: 'offline', a: 0, trim: 0 }, 'x');
    expect(Math.exp(zero[0][0])).toBeCloseTo(0.8 / 0.6, 12);
    expect(() =>
      logRatios(lp(0.8), refs, [[1], [1]], { mode: 'offline', a: 0.3, trim: 0 }, 'candidate'),
    ).toThrow(/rmia: candidate 0 has no OUT reference model/);
  });

  it('scores count the z each x dominates; one query equals two identical ones', () => {
    // Ratios x: 4, 1; z: 1, 2, 8. γ = 2: x=4 dominates z=1, 2 → 2/3; x=1 none.
    const lx = [Float64Array.from([4, 1], Math.log)];
    const lz = [Float64Array.from([1, 2, 8], Math.log)];
    expect(Array.from(rmiaScoresFromRatios(lx, lz, 2))).toEqual([2 / 3, 0]);
    expect(Array.from(rmiaScoresFromRatios([lx[0], lx[0]], [lz[0], lz[0]], 2))).toEqual([2 / 3, 0]);
    // Three queries: x dominates z when 2 of 3 agree.
    const x3 = [Float64Array.of(0), Float64Array.of(0), Float64Array.of(5)];
    const z3 = [Float64Array.of(1), Float64Array.of(-1), Float64Array.of(-1)];
    expect(rmiaScoresFromRatios(x3, z3, 1)[0]).toBe(1);
    // Two queries that split: no strict majority.
    expect(rmiaScoresFromRatios(x3.slice(0, 2), z3.slice(0, 2), 1)[0]).toBe(0);
  });
});

describe('rmia', () => {
  it('matches the pairwise oracle, online and offline, with queries, trim, γ, temperature', () => {
    const online = synthetic({ n: 40, references: 6, queries: 3, population: 30, seed: 5 });
    const offline = synthetic({
      n: 40,
      references: 6,
      queries: 3,
      population: 30,
      seed: 5,
      referenceRate: 0.25,
    });
    for (const c of [
      base,
      { ...base, mode: 'offline' as const, a: 0.4, trim: 0.2, gamma: 1.5, temperature: 2 },
      { ...base, augmented: false, gamma: 0.8 },
    ]) {
      const s = c.mode === 'online' ? online : offline;
      const input = c.augmented
        ? s.input
        : {
            ...s.input,
            target: s.input.target.slice(0, 1),
            references: s.input.references.map((r) => r.slice(0, 1)),
            population: {
              ...s.input.population!,
              target: s.input.population!.target.slice(0, 1),
              references: s.input.population!.references.map((r) => r.slice(0, 1)),
            },
          };
      const got = rmia(s.input, c).scores;
      const want = oracle(input, c);
      for (let i = 0; i < 40; i++) expect(got[i]).toBeCloseTo(want[i], 12);
    }
    expect(rmia(offline.input, { ...base, mode: 'offline' }).details.a).toBe(0.3);
    // Hand example of the two-class helper: p = 0.8 on class 0.
    expect(twoClass([0.8])[0]).toBeCloseTo(Math.log(0.8), 6);
  });

  it('separates members of a model that memorised them (AUC near 1)', () => {
    for (const mode of ['online', 'offline'] as const) {
      const s = synthetic({
        ...{ n: 1500, references: 4, shift: 4, noise: 0.3, population: 500, seed: 6 },
        referenceRate: mode === 'online' ? 0.5 : 0,
      });
      const m = membershipMetrics(rmia(s.input, { ...base, mode }).scores, s.targetMembership);
      expect(m.auc).toBeGreaterThan(0.97);
    }
  });

  it('is at chance on a model that never saw the data', () => {
    for (const mode of ['online', 'offline'] as const) {
      const s = synthetic({
        ...{ n: 3000, references: 4, targetSeen: false, population: 500, seed: 7 },
        referenceRate: mode === 'online' ? 0.5 : 0,
      });
      const m = membershipMetrics(rmia(s.input, { ...base, mode }).scores, s.targetMembership);
      // AUC's standard error at 1,500 + 1,500 is about 0.011.
      expect(Math.abs(m.auc - 0.5)).toBeLessThan(0.04);
    }
  });

  it('tunes a on the first reference model, never the target', () => {
    // Offline references that never trained on the candidates, except the one tuned on.
    const s = synthetic({
      ...{ n: 400, references: 4, population: 100, seed: 9 },
      referenceRate: [0.5, 0, 0, 0],
    });
    const tuned = tuneRmiaA(s.input, base);
    expect(tuned.a * 10).toBeCloseTo(Math.round(tuned.a * 10), 12);
    // The same AUC by hand: reference 0 as the target, references 1–3 as its references.
    const p = s.input.population!;
    const stand: MembershipInput = {
      ...s.input,
      target: s.input.references[0],
      references: s.input.references.slice(1),
      referenceMembership: s.input.referenceMembership.slice(1),
      population: { labels: p.labels, target: p.references[0], references: p.references.slice(1) },
    };
    const scores = rmia(stand, { ...base, mode: 'offline', a: tuned.a }).scores;
    expect(membershipMetrics(scores, s.input.referenceMembership[0]).auc).toBeCloseTo(
      tuned.auc,
      12,
    );
    const r = rmia(s.input, { ...base, mode: 'offline', tuneA: true });
    expect(r.details.a).toBe(tuned.a);
    // The target's outputs play no part in tuning.
    expect(tuneRmiaA({ ...s.input, target: s.input.references[1] }, base)).toEqual(tuned);
  });

  it('refuses an input without population samples', () => {
    const s = synthetic({ n: 10, references: 2 });
    expect(() => rmia(s.input, base)).toThrow(/rmia: needs population samples z/);
  });
});
