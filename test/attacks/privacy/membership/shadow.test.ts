import { describe, expect, it } from 'vitest';
import { fitMlp, mlpLogits } from '../../../../src/attacks/privacy/membership/attack-model.js';
import { membershipMetrics } from '../../../../src/attacks/privacy/membership/roc.js';
import {
  shadowAttack,
  shadowFeatures,
  shadowSchema,
} from '../../../../src/attacks/privacy/membership/shadow.js';
import { Rng } from '../../../../src/engine/rng.js';
import { synthetic } from './synthetic.js';

const base = shadowSchema.parse({});

/**
 * L2-regularised logistic regression by Newton's method on standardised features (bias not
 * penalised), objective mean log-loss + (λ/2)‖w‖²: the optimum the Adam fit must approach.
 */
function newtonLogistic(x: number[][], y: number[], lambda: number): number[] {
  const n = x.length;
  const d = x[0].length;
  const mean = Array.from({ length: d }, (_, j) => x.reduce((s, r) => s + r[j], 0) / n);
  const sd = Array.from({ length: d }, (_, j) =>
    Math.sqrt(x.reduce((s, r) => s + (r[j] - mean[j]) ** 2, 0) / n),
  );
  const z = x.map((r) => [...r.map((v, j) => (v - mean[j]) / sd[j]), 1]);
  const w = new Array(d + 1).fill(0);
  for (let it = 0; it < 50; it++) {
    const g = new Array(d + 1).fill(0);
    const h = Array.from({ length: d + 1 }, () => new Array(d + 1).fill(0));
    for (let i = 0; i < n; i++) {
      const p = 1 / (1 + Math.exp(-z[i].reduce((s, v, j) => s + v * w[j], 0)));
      for (let a = 0; a <= d; a++) {
        g[a] += ((p - y[i]) * z[i][a]) / n;
        for (let b = 0; b <= d; b++) h[a][b] += (p * (1 - p) * z[i][a] * z[i][b]) / n;
      }
    }
    for (let a = 0; a < d; a++) {
      g[a] += lambda * w[a];
      h[a][a] += lambda;
    }
    // Solve h·step = g by Gaussian elimination.
    const m = h.map((row, a) => [...row, g[a]]);
    for (let c = 0; c <= d; c++) {
      for (let r = c + 1; r <= d; r++) {
        const f = m[r][c] / m[c][c];
        for (let t = c; t <= d + 1; t++) m[r][t] -= f * m[c][t];
      }
    }
    const step = new Array(d + 1).fill(0);
    for (let r = d; r >= 0; r--) {
      let s = m[r][d + 1];
      for (let t = r + 1; t <= d; t++) s -= m[r][t] * step[t];
      step[r] = s / m[r][r];
    }
    for (let a = 0; a <= d; a++) w[a] -= step[a];
  }
  return w;
}

describe('attack model', () => {
  it('without a hidden layer reaches the regularised logistic optimum (Newton)', () => {
    const rng = new Rng(2);
    const n = 300;
    const y = Array.from({ length: n }, (_, i) => i % 2);
    const x = y.map((v) => [rng.normal() + v, 2 * rng.normal() - v]);
    const w = newtonLogistic(x, y, 0.01);
    const model = fitMlp(Float64Array.from(x.flat()), y, 2, {
      ...{ hidden: 0, epochs: 3000, batchSize: n, learningRate: 0.01, l2: 0.01, seed: 1 },
    });
    expect(model.theta[0]).toBeCloseTo(w[0], 3);
    expect(model.theta[1]).toBeCloseTo(w[1], 3);
    expect(model.theta[2]).toBeCloseTo(w[2], 3);
    // Its logits are w·z + b on the standardised rows.
    const logits = mlpLogits(model, Float64Array.from(x.flat()));
    const z0 = x[0].map((v, j) => (v - model.mean[j]) / model.std[j]);
    expect(logits[0]).toBeCloseTo(
      model.theta[0] * z0[0] + model.theta[1] * z0[1] + model.theta[2],
      12,
    );
  });

  it('with a hidden layer learns XOR, reproducibly from its seed', () => {
    const rng = new Rng(4);
    const rows: number[] = [];
    const y: number[] = [];
    for (let i = 0; i < 400; i++) {
      const [a, b] = [rng.next() - 0.5, rng.next() - 0.5];
      rows.push(a, b);
      y.push(a * b > 0 ? 1 : 0);
    }
    const c = { hidden: 16, epochs: 300, batchSize: 32, learningRate: 0.01, l2: 0, seed: 3 };
    const model = fitMlp(Float64Array.from(rows), y, 2, c);
    const logits = mlpLogits(model, Float64Array.from(rows));
    const correct = y.filter((v, i) => (logits[i] >= 0 ? 1 : 0) === v).length;
    expect(correct / 400).toBeGreaterThan(0.9);
    expect(fitMlp(Float64Array.from(rows), y, 2, c).theta).toEqual(model.theta);
    expect(fitMlp(Float64Array.from(rows), y, 2, { ...c, seed: 4 }).theta).not.toEqual(model.theta);
  });
});

describe('shadowFeatures', () => {
  it('sorted probabilities, sorted log-probabilities, probabilities + one-hot label', () => {
    const logits = Float32Array.from([0.2, 0.5, 0.3].map(Math.log));
    const close = (got: Float64Array, want: number[]) => {
      expect(got).toHaveLength(want.length);
      for (const [c, v] of want.entries()) expect(got[c]).toBeCloseTo(v, 6);
    };
    close(shadowFeatures(logits, [1], 3, 'sorted'), [0.5, 0.3, 0.2]);
    close(shadowFeatures(logits, [1], 3, 'sorted-log'), [0.5, 0.3, 0.2].map(Math.log));
    close(shadowFeatures(logits, [1], 3, 'label'), [0.2, 0.5, 0.3, 0, 1, 0]);
  });
});

describe('shadowAttack', () => {
  const s = synthetic({ n: 1000, references: 4, shift: 3, noise: 0.5, seed: 12 });

  it('separable shadows: high AUC on the held-out target, per class or global', () => {
    for (const c of [
      base,
      { ...base, perClass: false },
      { ...base, features: 'sorted-log' as const, hidden: 0 },
      { ...base, features: 'label' as const, perClass: false },
    ]) {
      const r = shadowAttack(s.input, c);
      const m = membershipMetrics(r.scores, s.targetMembership, r.decisions);
      expect(m.auc).toBeGreaterThan(0.9);
      expect(m.decisionBalancedAccuracy).toBeGreaterThan(0.8);
    }
  });

  it('is reproducible from its seed', () => {
    const a = shadowAttack(s.input, { ...base, epochs: 3 });
    expect(shadowAttack(s.input, { ...base, epochs: 3 }).scores).toEqual(a.scores);
    expect(shadowAttack(s.input, { ...base, epochs: 3, seed: 5 }).scores).not.toEqual(a.scores);
  });

  it('a class without shadow members falls back to the global model, with a warning', () => {
    const membership = s.input.referenceMembership.map((row) =>
      Uint8Array.from(row, (v, i) => (s.labels[i] === 0 ? 0 : v)),
    );
    const r = shadowAttack({ ...s.input, referenceMembership: membership }, { ...base, epochs: 3 });
    expect(r.warnings).toEqual([
      'class 0: shadow data lack members or non-members; the global model is used',
    ]);
    expect(r.scores.every(Number.isFinite)).toBe(true);
  });
});
