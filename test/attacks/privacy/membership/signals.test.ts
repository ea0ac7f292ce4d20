import { describe, expect, it } from 'vitest';
import {
  computeSignal,
  confidenceSignal,
  logitScaledConfidence,
  lossSignal,
  modifiedEntropySignal,
  trueClassLogProbability,
} from '../../../../src/attacks/privacy/membership/signals.js';
import { Rng } from '../../../../src/engine/rng.js';

/**
 * The textbook formulas, evaluated naively from probabilities (no log-sum-exp): accurate for
 * moderate logits, which is where they are compared.
 */
function naive(logits: number[], y: number) {
  const e = logits.map(Math.exp);
  const total = e.reduce((a, b) => a + b, 0);
  const p = e.map((v) => v / total);
  let mentr = -(1 - p[y]) * Math.log(p[y]);
  for (let c = 0; c < p.length; c++) if (c !== y) mentr -= p[c] * Math.log(1 - p[c]);
  return {
    loss: -Math.log(p[y]),
    confidence: p[y],
    phi: Math.log(p[y]) - Math.log(1 - p[y]),
    mentr,
  };
}

describe('membership signals', () => {
  it('match the naive float64 formulas on moderate logits', () => {
    const rng = new Rng(11);
    const k = 7;
    const n = 200;
    const logits = Float32Array.from({ length: n * k }, () => 3 * rng.normal());
    const labels = Int32Array.from({ length: n }, () => rng.int(k));
    const got = {
      loss: lossSignal(logits, labels, k),
      confidence: confidenceSignal(logits, labels, k),
      phi: logitScaledConfidence(logits, labels, k),
      mentr: modifiedEntropySignal(logits, labels, k),
    };
    for (let i = 0; i < n; i++) {
      const want = naive(Array.from(logits.subarray(i * k, (i + 1) * k)), labels[i]);
      for (const key of ['loss', 'confidence', 'phi', 'mentr'] as const) {
        expect(got[key][i]).toBeCloseTo(want[key], 10);
      }
    }
    expect(computeSignal('modified-entropy', logits, labels, k)).toEqual(got.mentr);
  });

  it('stay finite where the naive formulas give ±Infinity (hand values)', () => {
    // [40, 0, 0]: p_0 = 1/(1 + 2e^-40), so φ_0 = 40 − log 2 exactly; naive 1 − p_0 rounds to 0.
    const sure = [40, 0, 0];
    expect(naive(sure, 0).phi).toBe(Number.POSITIVE_INFINITY);
    expect(logitScaledConfidence(sure, [0], 3)[0]).toBeCloseTo(40 - Math.LN2, 12);
    expect(lossSignal(sure, [0], 3)[0]).toBeCloseTo(2 * Math.exp(-40), 25);
    // y = 1: φ = 0 − log(e^40 + e^0) = −40 − log1p(e^-40).
    expect(logitScaledConfidence(sure, [1], 3)[0]).toBeCloseTo(-40, 12);
    // [−800, 800, 0], y = 0: loss = 1600; Mentr ≈ −log p_0 − p_1·log(1 − p_1) = 1600 + 800.
    const wrong = [-800, 800, 0];
    expect(naive(wrong, 0).loss).toBe(Number.POSITIVE_INFINITY);
    expect(lossSignal(wrong, [0], 3)[0]).toBeCloseTo(1600, 9);
    expect(modifiedEntropySignal(wrong, [0], 3)[0]).toBeCloseTo(2400, 9);
    expect(logitScaledConfidence(wrong, [0], 3)[0]).toBeCloseTo(-1600, 9);
    expect(confidenceSignal(wrong, [0], 3)[0]).toBe(0);
    // A certain right answer has modified entropy 0 (each term → 0).
    expect(modifiedEntropySignal([800, 0, -800], [0], 3)[0]).toBeCloseTo(0, 12);
  });

  it('true-class log-probability at a temperature', () => {
    const logits = [2, -1, 0.5, 4, 0, -3];
    const got = trueClassLogProbability(logits, [2, 0], 3, 2);
    const want = [
      Math.log(naive([1, -0.5, 0.25], 2).confidence),
      Math.log(naive([2, 0, -1.5], 0).confidence),
    ];
    expect(got[0]).toBeCloseTo(want[0], 12);
    expect(got[1]).toBeCloseTo(want[1], 12);
    expect(() => trueClassLogProbability(logits, [0, 0], 3, 0)).toThrow(/temperature must be > 0/);
  });

  it('refuse mismatched shapes', () => {
    expect(() => lossSignal([1, 2, 3], [0, 1], 2)).toThrow(/3 logits for 2 labels × 2 classes/);
    expect(() => lossSignal([1], [0], 1)).toThrow(/numClasses must be an integer >= 2, got 1/);
  });
});
