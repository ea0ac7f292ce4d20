import { describe, expect, it } from 'vitest';
import { membershipMetrics } from '../../../../src/attacks/privacy/membership/roc.js';
import { lossSignal } from '../../../../src/attacks/privacy/membership/signals.js';
import {
  calibrateThresholds,
  chooseThreshold,
  thresholdAttack,
  thresholdSchema,
} from '../../../../src/attacks/privacy/membership/threshold.js';
import { synthetic } from './synthetic.js';

const defaults = thresholdSchema.parse({});

describe('chooseThreshold', () => {
  it('maximises balanced accuracy and sits midway to the next lower score (by hand)', () => {
    // Rules score >= .9/.8/.7/.5/.3 give BA .625, .583, .708, .667, .5: best at .7, next .5.
    const r = chooseThreshold([0.9, 0.8, 0.8, 0.7, 0.5, 0.5, 0.3], [1, 1, 0, 1, 0, 1, 0]);
    expect(r.threshold).toBeCloseTo(0.6, 14);
    expect(r.balancedAccuracy).toBeCloseTo((0.75 + 2 / 3) / 2, 14);
    // Perfectly separated: between the lowest member and the highest non-member.
    expect(chooseThreshold([5, 4, 1, 0], [1, 1, 0, 0]).threshold).toBe(2.5);
    // Nothing beats chance (the member scores lower): the rule flags everything, BA ½.
    expect(chooseThreshold([0, 1], [1, 0])).toEqual({ threshold: 0, balancedAccuracy: 0.5 });
    expect(() => chooseThreshold([Number.POSITIVE_INFINITY, 1], [1, 0])).toThrow(/not finite/);
  });
});

describe('calibrateThresholds', () => {
  it('pools every reference model, and per class falls back with a warning', () => {
    const ref = {
      scores: [
        [3, 1, 10, 0],
        [2, 0, 9, 8],
      ],
      membership: [
        [1, 0, 1, 0],
        [1, 0, 0, 0],
      ],
    };
    const pooled = chooseThreshold([3, 1, 10, 0, 2, 0, 9, 8], [1, 0, 1, 0, 1, 0, 0, 0]);
    const cal = calibrateThresholds(ref, { labels: [0, 0, 1, 2], numClasses: 4 });
    expect(cal.global).toBe(pooled.threshold);
    // Class 0: members 3, 2; non-members 1, 0 → midway 1.5. Class 1: 10 (in), 9 (out) → 9.5.
    expect(Array.from(cal.perClass ?? [])).toEqual([1.5, 9.5, pooled.threshold, pooled.threshold]);
    expect(cal.warnings).toEqual([
      'class 2: no reference members or non-members; the global threshold is used',
      'class 3: no reference members or non-members; the global threshold is used',
    ]);
    expect(() => calibrateThresholds({ scores: [], membership: [] })).toThrow(
      /no reference models/,
    );
    expect(() => calibrateThresholds({ scores: [[1, 2]], membership: [[1, 1]] })).toThrow(
      /no members or no non-members/,
    );
  });
});

describe('thresholdAttack', () => {
  const { input, targetMembership, labels } = synthetic({ n: 600, references: 4, seed: 2 });

  it("loss: the threshold is chosen on the references' losses, never the target's", () => {
    const r = thresholdAttack('loss', input, defaults);
    const refLoss = input.references.flatMap((ref) => Array.from(lossSignal(ref[0], labels, 4)));
    const refMembers = input.referenceMembership.flatMap((m) => Array.from(m));
    // The oriented signal is −loss: a loss threshold T flags loss ≤ T.
    const want = -chooseThreshold(
      refLoss.map((v) => -v),
      refMembers,
    ).threshold;
    expect(r.details.threshold).toBeCloseTo(want, 12);
    const loss = lossSignal(input.target[0], labels, 4);
    for (let i = 0; i < loss.length; i++) {
      expect(r.decisions?.[i]).toBe(loss[i] <= want ? 1 : 0);
      expect(r.scores[i]).toBeCloseTo(want - loss[i], 12);
    }
    // The threshold depends on the reference models alone, not on the target's outputs.
    const other = thresholdAttack('loss', { ...input, target: input.references[0] }, defaults);
    expect(other.details.threshold).toBe(r.details.threshold);
    const m = membershipMetrics(r.scores, targetMembership, r.decisions);
    expect(m.auc).toBeGreaterThan(0.75);
    expect(m.decisionBalancedAccuracy).toBeGreaterThan(0.65);
  });

  it("fixed: the user's threshold in the signal's units; none: scores only", () => {
    const fixed = thresholdAttack('loss', input, {
      ...defaults,
      calibration: 'fixed',
      threshold: 0.2,
    });
    const loss = lossSignal(input.target[0], labels, 4);
    for (let i = 0; i < loss.length; i++) expect(fixed.decisions?.[i]).toBe(loss[i] <= 0.2 ? 1 : 0);
    const none = thresholdAttack('confidence', input, { ...defaults, calibration: 'none' });
    expect(none.decisions).toBeUndefined();
    // The global variant needs no reference model.
    const alone = { ...input, references: [], referenceMembership: [] };
    expect(
      thresholdAttack('modified-entropy', alone, { ...defaults, calibration: 'none' }).scores,
    ).toHaveLength(600);
    expect(() => thresholdAttack('loss', alone, defaults)).toThrow(/no reference models/);
  });

  it('per class: each class its own threshold, one ranking of shifted scores', () => {
    const r = thresholdAttack('confidence', input, { ...defaults, perClass: true });
    const per = r.details.perClass as number[];
    expect(per).toHaveLength(4);
    for (let i = 0; i < 600; i++) {
      expect(r.decisions?.[i]).toBe(r.scores[i] >= 0 ? 1 : 0);
    }
    expect(new Set(per).size).toBeGreaterThan(1);
  });

  it('averages over queries when augmented', () => {
    const two = synthetic({ n: 50, references: 2, queries: 2, seed: 4 });
    const a = thresholdAttack('loss', two.input, {
      ...defaults,
      augmented: true,
      calibration: 'none',
    });
    const l0 = lossSignal(two.input.target[0], two.labels, 4);
    const l1 = lossSignal(two.input.target[1], two.labels, 4);
    for (let i = 0; i < 50; i++) expect(a.scores[i]).toBeCloseTo(-(l0[i] + l1[i]) / 2, 12);
  });
});
