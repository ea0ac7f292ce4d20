/**
 * Cells, worst case and fairness on hand-built per-example arrays, against values computed here
 * independently (loops written for the test, not the library's code).
 */
import { describe, expect, it } from 'vitest';
import { type AttackRun, cellOf, worstCase } from '../../src/evaluate/cells.js';
import { fairness } from '../../src/evaluate/fairness.js';
import type { AttackCell, WorstCaseCell } from '../../src/evaluate/results.js';

const labels = [0, 1, 2, 0, 1, 2, 0, 1];
const clean = [0, 1, 2, 0, 1, 0, 0, 1]; // example 5 is misclassified clean

function run(adversarial: number[], norms: number[] = adversarial.map(() => 0.1)): AttackRun {
  return { clean, adversarial, norms, gradientEvaluations: 8, queries: 0, seconds: 1 };
}

function meta(attack: string, norm: 'linf' | 'l2', eps: number, minimumNorm = false) {
  return { attack, kind: attack, norm, eps, params: {}, minimumNorm, targeted: false };
}

describe('cellOf', () => {
  it('counts robust examples, success among the clean-correct, perturbation sizes', () => {
    const c = cellOf(
      run([0, 2, 2, 1, 1, 0, 0, 0], [0, 0.3, 0, 0.1, 0, 0, 0, 0.2]),
      labels,
      meta('pgd', 'linf', 0.3),
    );
    expect(c.robust).toEqual([1, 0, 1, 0, 1, 0, 1, 0]);
    expect(c.robustAccuracy).toBe(4 / 8);
    expect(c.attackSuccessRate).toBe(3 / 7);
    expect(c.meanPerturbation).toBeCloseTo((0.3 + 0.1 + 0.2) / 3, 12);
    expect(c.medianPerturbation).toBeCloseTo(0.2, 12);
    expect(c.whiteBox).toBe(true);
    expect(cellOf(run(clean), labels, meta('square', 'linf', 0.1))).toMatchObject({
      whiteBox: false,
      attackSuccessRate: 0,
      meanPerturbation: null,
      medianPerturbation: null,
    });
  });

  it("counts a detector's rejection (-1) of an attacked input as defended, of a clean one as an error", () => {
    const r = run([0, -1, 2, -1, 1, 0, 0, 2]);
    r.clean = [0, 1, 2, 0, 1, 0, -1, 1]; // example 6 is rejected clean
    const c = cellOf(r, labels, meta('pgd', 'linf', 0.1));
    expect(c.robust).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
    // Clean-correct: 0, 1, 2, 3, 4, 7; only example 7 ends misclassified and not rejected.
    expect(c.attackSuccessRate).toBe(1 / 6);
  });

  it('thresholds a minimum-norm run at each eps', () => {
    const r = run([1, 0, 0, 1, 0, 0, 1, 0], [0.05, 0.2, 0.5, 0.1, 0.3, 0, 0.6, 0.15]);
    const at = (eps: number) => cellOf(r, labels, meta('deepfool', 'l2', eps, true));
    // At 0.1 only examples 0, 3 (and 5, norm 0) are within the budget; the rest keep their clean
    // prediction.
    expect(at(0.1).adversarial).toEqual([1, 1, 2, 1, 1, 0, 0, 1]);
    expect(at(0.1).robust).toEqual([0, 1, 1, 0, 1, 0, 1, 1]);
    expect(at(0.1).meanPerturbation).toBeCloseTo((0.05 + 0.1) / 2, 12);
    expect(at(1).robust).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect(at(0.01).robust).toEqual([1, 1, 1, 1, 1, 0, 1, 1]);
  });
});

/** Worst case by the definition, written independently of the library. */
function expectedWorst(cells: { attack: string; robust: number[] }[]) {
  const robust: number[] = [];
  const brokenBy: (string | null)[] = [];
  for (let i = 0; i < labels.length; i++) {
    let by: string | null = clean[i] === labels[i] ? null : 'clean';
    for (const c of cells) if (by === null && c.robust[i] === 0) by = c.attack;
    brokenBy.push(by);
    robust.push(by === null ? 1 : 0);
  }
  return { robust, brokenBy };
}

describe('worstCase', () => {
  it('is the per-example AND over attacks at each norm and eps, with the first attack that broke it', () => {
    const mk = (attack: string, norm: 'linf' | 'l2', eps: number, robust: number[]) =>
      ({ attack, norm, eps, robust }) as AttackCell;
    const a = mk('fgsm', 'linf', 0.1, [1, 0, 1, 1, 1, 0, 1, 1]);
    const b = mk('pgd', 'linf', 0.1, [1, 0, 0, 1, 1, 0, 1, 0]);
    const c = mk('square', 'linf', 0.1, [0, 1, 1, 1, 1, 0, 1, 1]);
    const d = mk('pgd', 'l2', 1, [1, 1, 1, 0, 1, 0, 1, 1]);
    const e = mk('pgd', 'linf', 0.2, [0, 0, 0, 0, 0, 0, 0, 0]);
    const w = worstCase(labels, clean, [a, b, c, d, e], { linf: [0.1, 0.2, 0.3], l2: [1] });
    expect(w.map((x) => [x.norm, x.eps])).toEqual([
      ['linf', 0.1],
      ['linf', 0.2],
      ['l2', 1],
    ]);
    const want = expectedWorst([a, b, c]);
    expect(w[0].robust).toEqual(want.robust);
    expect(w[0].brokenBy).toEqual(want.brokenBy);
    expect(w[0].brokenBy).toEqual(['square', 'fgsm', 'pgd', null, null, 'clean', null, 'pgd']);
    expect(w[0].robustAccuracy).toBe(3 / 8);
    expect(w[1].robust).toEqual(expectedWorst([e]).robust);
    expect(w[2].robust).toEqual(expectedWorst([d]).robust);
    expect(w[2].robustAccuracy).toBe(6 / 8);
  });
});

describe('fairness', () => {
  // Classes 0, 1, 2 with 3, 3, 2 examples; groups cut across them.
  const names = ['zero', 'one', 'two'];
  const groups = ['a', 'a', 'b', 'b', 'a', 'b', 'a', 'b'];
  const worst: WorstCaseCell[] = [
    { norm: 'linf', eps: 0.1, robustAccuracy: 0, robust: [1, 0, 1, 1, 0, 0, 0, 1], brokenBy: [] },
  ];

  it('computes per-class and per-group accuracies and the gaps and ratios between them', () => {
    const f = fairness(labels, names, groups, clean, worst);
    // class zero: examples 0, 3, 6 -> clean 3/3, robust 2/3; one: 1, 4, 7 -> 3/3, 1/3;
    // two: 2, 5 -> 1/2, 1/2.
    expect(f.perClass).toEqual([
      { group: 'zero', n: 3, cleanAccuracy: 1, robustAccuracy: { 'linf:0.1': 2 / 3 } },
      { group: 'one', n: 3, cleanAccuracy: 1, robustAccuracy: { 'linf:0.1': 1 / 3 } },
      { group: 'two', n: 2, cleanAccuracy: 0.5, robustAccuracy: { 'linf:0.1': 0.5 } },
    ]);
    // group a: 0, 1, 4, 6 -> clean 4/4, robust 1/4; b: 2, 3, 5, 7 -> clean 3/4, robust 3/4.
    expect(f.perGroup).toEqual([
      { group: 'a', n: 4, cleanAccuracy: 1, robustAccuracy: { 'linf:0.1': 0.25 } },
      { group: 'b', n: 4, cleanAccuracy: 0.75, robustAccuracy: { 'linf:0.1': 0.75 } },
    ]);
    const row = (over: string, key: string) =>
      f.summary.find((s) => s.over === over && s.key === key);
    expect(row('class', 'clean')).toEqual({
      over: 'class',
      key: 'clean',
      gap: 0.5,
      ratio: 0.5,
      worst: 'two',
      best: 'zero',
    });
    const robust = row('class', 'linf:0.1')!;
    expect(robust.gap).toBeCloseTo(2 / 3 - 1 / 3, 12);
    expect(robust.ratio).toBeCloseTo(0.5, 12);
    expect([robust.worst, robust.best]).toEqual(['one', 'zero']);
    expect(row('group', 'clean')).toMatchObject({ gap: 0.25, ratio: 0.75, worst: 'b', best: 'a' });
    expect(row('group', 'linf:0.1')).toMatchObject({
      gap: 0.5,
      ratio: 1 / 3,
      worst: 'a',
      best: 'b',
    });
  });

  it('has no group rows without groups, and a null ratio when the best is 0', () => {
    const zero: WorstCaseCell[] = [{ ...worst[0], robust: labels.map(() => 0) }];
    const f = fairness(labels, names, null, clean, zero);
    expect(f.perGroup).toBeNull();
    expect(f.summary.every((s) => s.over === 'class')).toBe(true);
    expect(f.summary.find((s) => s.key === 'linf:0.1')).toMatchObject({ gap: 0, ratio: null });
  });
});
