import { describe, expect, it } from 'vitest';
import {
  rateAbove,
  rocAuc,
  thresholdAtFpr,
  tprAtFpr,
} from '../../../src/defenses/detection/metrics.js';

describe('detection metrics', () => {
  it('ROC AUC with ties equals the hand-computed Mann–Whitney value', () => {
    // clean 0.1, 0.4, 0.4, 0.8; adversarial 0.4, 0.8, 0.9.
    // Pairs (adv > clean) + ½(adv = clean): 0.4 → 1 + ½·2 = 2; 0.8 → 3 + ½ = 3.5; 0.9 → 4.
    // AUC = 9.5 / 12.
    expect(rocAuc([0.1, 0.4, 0.4, 0.8], [0.4, 0.8, 0.9])).toBeCloseTo(9.5 / 12, 12);
    // Trapezoid over the ROC corners gives the same: (0,0) (0,1/3) (1/4,2/3) (3/4,1) (1,1)...
    expect(rocAuc([1, 1], [1, 1])).toBe(0.5);
    expect(rocAuc([0, 1], [2, 3])).toBe(1);
    expect(rocAuc([2, 3], [0, 1])).toBe(0);
    expect(rocAuc([], [1])).toBeNaN();
  });

  it('TPR at FPR on a hand example', () => {
    const clean = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
    const adv = [0.35, 0.75, 0.85, 0.95, 1.5];
    // fpr 0.2: at most 2 clean above → threshold is the 3rd largest clean score, 0.8.
    expect(thresholdAtFpr(clean, 0.2)).toBe(0.8);
    const r = tprAtFpr(clean, adv, 0.2);
    expect(r.fpr).toBeCloseTo(0.2, 12);
    expect(r.tpr).toBeCloseTo(3 / 5, 12); // 0.85, 0.95, 1.5
    // fpr 0: nothing clean flagged, threshold = max clean.
    expect(tprAtFpr(clean, adv, 0)).toEqual({ tpr: 1 / 5, fpr: 0, threshold: 1.0 });
    expect(rateAbove(clean, Number.NEGATIVE_INFINITY)).toBe(1);
    expect(thresholdAtFpr(clean, 1)).toBe(Number.NEGATIVE_INFINITY);
  });

  it('rejects a bad fpr', () => {
    expect(() => thresholdAtFpr([1], 1.5)).toThrow(/fpr must be in \[0, 1\]/);
  });
});
