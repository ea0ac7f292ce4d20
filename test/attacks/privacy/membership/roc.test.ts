import { describe, expect, it } from 'vitest';
import {
  balancedAccuracyAt,
  balancedAccuracyOf,
  bestBalancedAccuracy,
  compactRoc,
  curveAuc,
  curveTprAtFpr,
  membershipMetrics,
  rocCurve,
} from '../../../../src/attacks/privacy/membership/roc.js';
import { Rng } from '../../../../src/engine/rng.js';

// Members 0.9, 0.8, 0.7, 0.5; non-members 0.8, 0.5, 0.3 (P = 4, N = 3), two ties across groups.
const scores = [0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.3];
const membership = [1, 1, 0, 1, 0, 1, 0];

/** Mann–Whitney by brute force over every (member, non-member) pair, ties counting ½. */
function bruteAuc(s: ArrayLike<number>, m: ArrayLike<number>): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < s.length; i++) {
    if (m[i] !== 1) continue;
    for (let j = 0; j < s.length; j++) {
      if (m[j] !== 0) continue;
      pairs++;
      wins += s[i] > s[j] ? 1 : s[i] === s[j] ? 0.5 : 0;
    }
  }
  return wins / pairs;
}

describe('rocCurve', () => {
  it('puts one point at each distinct threshold (hand-computed)', () => {
    const c = rocCurve(scores, membership);
    // Thresholds ∞, .9, .8 (one member + one non-member join), .7, .5 (both), .3.
    expect(Array.from(c.thresholds)).toEqual([Number.POSITIVE_INFINITY, 0.9, 0.8, 0.7, 0.5, 0.3]);
    expect(Array.from(c.truePositives)).toEqual([0, 1, 2, 3, 4, 4]);
    expect(Array.from(c.falsePositives)).toEqual([0, 0, 1, 1, 2, 3]);
    expect(Array.from(c.tpr)).toEqual([0, 0.25, 0.5, 0.75, 1, 1]);
    expect(Array.from(c.fpr)).toEqual([0, 0, 1 / 3, 1 / 3, 2 / 3, 1]);
    expect([c.members, c.nonMembers]).toEqual([4, 3]);
  });

  it('AUC: trapezoid by hand, 0.75, and the Mann–Whitney value', () => {
    // (1/3)(.25+.5)/2 + (1/3)(.75+1)/2 + (1/3)(1+1)/2 = 0.125 + 0.291667 + 0.333333.
    expect(curveAuc(rocCurve(scores, membership))).toBeCloseTo(0.75, 14);
    expect(bruteAuc(scores, membership)).toBe(0.75);
  });

  it('AUC equals the brute-force Mann–Whitney statistic on tie-heavy random data', () => {
    const rng = new Rng(3);
    for (let trial = 0; trial < 50; trial++) {
      const n = 2 + rng.int(60);
      const s = Array.from({ length: n }, () => rng.int(6));
      const m = Array.from({ length: n }, (_, i) => (i < 1 ? 1 : i < 2 ? 0 : rng.int(2)));
      expect(curveAuc(rocCurve(s, m))).toBeCloseTo(bruteAuc(s, m), 12);
    }
  });

  it('handles infinite scores and refuses NaN, bad labels, one-sided data', () => {
    const c = rocCurve([Number.POSITIVE_INFINITY, 1, Number.NEGATIVE_INFINITY], [1, 0, 1]);
    expect(Array.from(c.tpr)).toEqual([0, 0.5, 0.5, 1]);
    expect(curveAuc(c)).toBeCloseTo(0.5, 14);
    expect(() => rocCurve([1, Number.NaN], [1, 0])).toThrow(/score 1 is NaN/);
    expect(() => rocCurve([1, 2], [1, 2])).toThrow(/membership must be 0\/1, got 2 at 1/);
    expect(() => rocCurve([1, 2], [1, 1])).toThrow(/need members and non-members, got 2 of 2/);
    expect(() => rocCurve([1, 2], [1])).toThrow(/2 scores but 1 labels/);
  });
});

describe('balanced accuracy', () => {
  it('best over thresholds, by hand: (0.75 + 2/3) / 2 at 0.7', () => {
    const c = rocCurve(scores, membership);
    const best = bestBalancedAccuracy(c);
    expect(best.balancedAccuracy).toBeCloseTo((0.75 + 2 / 3) / 2, 14);
    expect(c.thresholds[best.index]).toBe(0.7);
    expect(balancedAccuracyAt(scores, membership, 0.7)).toBeCloseTo(best.balancedAccuracy, 14);
  });

  it('at a given threshold and of decisions, counted by hand', () => {
    // score >= 0.8: members flagged 2 of 4, non-members flagged 1 of 3 → (0.5 + 2/3) / 2.
    expect(balancedAccuracyAt(scores, membership, 0.8)).toBeCloseTo((0.5 + 2 / 3) / 2, 14);
    expect(balancedAccuracyOf([1, 0, 0, 0, 0, 0, 1], membership)).toBeCloseTo(
      (0.25 + 2 / 3) / 2,
      14,
    );
  });
});

describe('curveTprAtFpr', () => {
  it('takes the largest TPR with at most ⌊f·N⌋ false positives', () => {
    const c = rocCurve(scores, membership);
    expect(curveTprAtFpr(c, 0)).toEqual({ tpr: 0.25, fpr: 0, threshold: 0.9 });
    expect(curveTprAtFpr(c, 0.3).tpr).toBe(0.25); // 0.9 false positives → 0
    expect(curveTprAtFpr(c, 1 / 3)).toEqual({ tpr: 0.75, fpr: 1 / 3, threshold: 0.7 });
    expect(curveTprAtFpr(c, 1).tpr).toBe(1);
    expect(() => curveTprAtFpr(c, 1.5)).toThrow(/fpr must be in \[0, 1\], got 1.5/);
  });

  it('at 0.1% and 1% on 10,000 non-members: a count-based check', () => {
    const rng = new Rng(5);
    const n = 20000;
    const m = Array.from({ length: n }, (_, i) => i % 2);
    const s = m.map((v) => rng.normal() + 1.5 * v);
    const c = rocCurve(s, m);
    for (const f of [0.001, 0.01]) {
      // Direct: sort non-member scores, the rule must pass at most ⌊f·N⌋ of them.
      const neg = s.filter((_, i) => m[i] === 0).sort((a, b) => b - a);
      const allowed = Math.floor(f * neg.length);
      const cut = neg[allowed]; // the first non-member the rule must not pass
      const tpr = s.filter((v, i) => m[i] === 1 && v > cut).length / (n / 2);
      expect(curveTprAtFpr(c, f).tpr).toBeCloseTo(tpr, 12);
    }
  });
});

describe('compactRoc', () => {
  it('keeps the low-FPR region, lies on the curve, and is small', () => {
    const rng = new Rng(9);
    const n = 20000;
    const m = Array.from({ length: n }, (_, i) => i % 2);
    const s = m.map((v) => rng.normal() + v);
    const c = rocCurve(s, m);
    const r = compactRoc(c, 50);
    expect(r.fpr.length).toBeLessThanOrEqual(52);
    expect(r.fpr[0]).toBe(0);
    expect(r.tpr[0]).toBe(curveTprAtFpr(c, 0).tpr);
    expect(r.fpr).toContain(1 / 10000);
    expect(r.fpr.at(-1)).toBe(1);
    expect(r.tpr.at(-1)).toBe(1);
    for (let p = 1; p < r.fpr.length; p++) {
      expect(r.fpr[p]).toBeGreaterThan(r.fpr[p - 1]);
      expect(r.tpr[p]).toBeGreaterThanOrEqual(r.tpr[p - 1]);
      // Each point is the upper staircase at its FPR.
      expect(r.tpr[p]).toBe(curveTprAtFpr(c, r.fpr[p]).tpr);
    }
    // A dozen points below FPR 1% (of 50): the low region keeps its resolution.
    expect(r.fpr.filter((f) => f > 0 && f < 0.01).length).toBeGreaterThanOrEqual(12);
  });
});

describe('membershipMetrics', () => {
  it('collects the metrics and the decisions’ balanced accuracy; JSON-ready', () => {
    const m = membershipMetrics(scores, membership, [1, 1, 1, 1, 0, 0, 0]);
    expect(m.auc).toBeCloseTo(0.75, 14);
    expect(m.tprAt['0.001']).toBe(0.25);
    expect(m.tprAt['0.01']).toBe(0.25);
    expect(m.balancedAccuracy).toBeCloseTo((0.75 + 2 / 3) / 2, 14);
    expect(m.decisionBalancedAccuracy).toBeCloseTo((0.75 + 2 / 3) / 2, 14);
    expect([m.members, m.nonMembers]).toEqual([4, 3]);
    expect(JSON.parse(JSON.stringify(m))).toEqual(m);
    expect(membershipMetrics(scores, membership)).not.toHaveProperty('decisionBalancedAccuracy');
  });
});
