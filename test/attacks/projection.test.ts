import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  clipToBounds,
  enforceThreatModel,
  NORMS,
  type Norm,
  normalizeGradient,
  perturbationNorms,
  projectToBall,
  randomStart,
} from '../../src/attacks/evasion/index.js';
import { Rng } from '../../src/engine/rng.js';
import { ParryError } from '../../src/errors.js';
import { toArray, values } from './helpers.js';

// Independent float64 references in plain JS.
function norm64(v: number[], norm: Norm): number {
  if (norm === 'linf') return Math.max(...v.map(Math.abs));
  if (norm === 'l1') return v.reduce((a, b) => a + Math.abs(b), 0);
  return Math.sqrt(v.reduce((a, b) => a + b * b, 0));
}

/**
 * L1-ball projection by bisection on the threshold θ: the projection is soft-thresholding
 * sign(v)·max(|v| − θ, 0) with θ ≥ 0 solving Σ max(|v_i| − θ, 0) = eps (KKT conditions),
 * a different route from the sorting algorithm under test.
 */
function projectL1Bisection(v: number[], eps: number): number[] {
  if (norm64(v, 'l1') <= eps) return [...v];
  let lo = 0;
  let hi = Math.max(...v.map(Math.abs));
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    const s = v.reduce((a, b) => a + Math.max(Math.abs(b) - mid, 0), 0);
    if (s > eps) lo = mid;
    else hi = mid;
  }
  const theta = (lo + hi) / 2;
  return v.map((b) => Math.sign(b) * Math.max(Math.abs(b) - theta, 0));
}

/** Splits a flat [batch·d] array into rows. */
function rows(a: number[], d: number): number[][] {
  return Array.from({ length: a.length / d }, (_, i) => a.slice(i * d, (i + 1) * d));
}

const shape = [5, 2, 3, 2]; // batch 5, d = 12, rank 4
const d = 12;

describe('projectToBall', () => {
  const x = tf.tensor(values(5 * d, 1, 0.2, 0.8), shape);

  it.each(NORMS)('%s: leaves points already inside unchanged, bit for bit', (norm) => {
    const eps = 0.3;
    const raw = rows(values(5 * d, 2, -1, 1), d);
    // Scale each row's perturbation to half of eps in the norm under test.
    const delta = raw.flatMap((r) => r.map((v) => (v * 0.5 * eps) / norm64(r, norm)));
    const inside = tf.add(x, tf.tensor(delta, shape));
    const p = projectToBall(inside, x, eps, norm);
    expect(toArray(p)).toEqual(toArray(inside));
    tf.dispose([inside, p]);
  });

  it.each(NORMS)('%s: maps far points into the ball, and into bounds with the re-clip', (norm) => {
    const eps = 0.25;
    const far = tf.add(x, tf.tensor(values(5 * d, 3, -2, 2), shape));
    const p = projectToBall(far, x, eps, norm);
    for (const n of toArray(perturbationNorms(p, x, norm)))
      expect(n).toBeLessThanOrEqual(eps + 1e-6);
    const e = enforceThreatModel(far, x, eps, norm, [0, 1]);
    const ev = toArray(e);
    expect(Math.min(...ev)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...ev)).toBeLessThanOrEqual(1);
    for (const n of toArray(perturbationNorms(e, x, norm)))
      expect(n).toBeLessThanOrEqual(eps + 1e-6);
    tf.dispose([far, p, e]);
  });

  it('l2: rescales outside points radially', () => {
    const delta = values(5 * d, 4, -1, 1);
    const far = tf.add(x, tf.tensor(delta, shape));
    const p = tf.sub(projectToBall(far, x, 0.5, 'l2'), x);
    const expected = rows(delta, d).flatMap((r) => r.map((v) => (v * 0.5) / norm64(r, 'l2')));
    const got = toArray(p);
    expected.forEach((v, i) => {
      expect(got[i]).toBeCloseTo(v, 5);
    });
  });

  it('l1: matches an independent float64 projection (bisection on the threshold)', () => {
    for (const [seed, eps] of [
      [5, 0.5],
      [6, 1.0],
      [7, 3.0],
      [8, 0.05],
    ]) {
      const delta = values(5 * d, seed, -1, 1);
      const v = tf.tensor2d(delta, [5, d]);
      const zero = tf.zeros([5, d]);
      const got = toArray(projectToBall(v, zero, eps, 'l1'));
      const expected = rows(delta, d).flatMap((r) => projectL1Bisection(r, eps));
      expected.forEach((e, i) => {
        expect(got[i]).toBeCloseTo(e, 5);
      });
    }
    // Ties and a single dominant coordinate.
    const tied = tf.tensor2d([
      [1, -1, 1, -1],
      [3, 0, 0, 0.1],
    ]);
    const got = toArray(projectToBall(tied, tf.zeros([2, 4]), 1, 'l1'));
    const expected = [
      ...projectL1Bisection([1, -1, 1, -1], 1),
      ...projectL1Bisection([3, 0, 0, 0.1], 1),
    ];
    expected.forEach((e, i) => {
      expect(got[i]).toBeCloseTo(e, 6);
    });
  });

  it('eps = 0 returns x exactly', () => {
    const far = tf.add(x, tf.tensor(values(5 * d, 9, -1, 1), shape));
    for (const norm of NORMS) expect(toArray(projectToBall(far, x, 0, norm))).toEqual(toArray(x));
  });

  it('rejects a negative eps and mismatched shapes', () => {
    expect(() => projectToBall(x, x, -0.1, 'l2')).toThrow(/eps must be >= 0, got -0.1/);
    const y = tf.zeros([5, d]);
    expect(() => projectToBall(y, x, 0.1, 'l2')).toThrow(ParryError);
  });

  it('clipToBounds clips elementwise', () => {
    expect(toArray(clipToBounds(tf.tensor1d([-1, 0.5, 2]), [0, 1]))).toEqual([0, 0.5, 1]);
  });
});

describe('normalizeGradient', () => {
  const g = tf.tensor(values(5 * d, 11, -1, 1), shape);

  it('linf is the sign; l2 has unit norm per example', () => {
    expect(toArray(normalizeGradient(g, 'linf'))).toEqual(toArray(g).map(Math.sign));
    for (const n of toArray(perturbationNorms(normalizeGradient(g, 'l2'), tf.zerosLike(g), 'l2'))) {
      expect(n).toBeCloseTo(1, 5);
    }
  });

  it('l1 keeps the top-k coordinates by |g|, with unit L1 norm', () => {
    const got = rows(toArray(normalizeGradient(g, 'l1', 0.25)), d); // k = 3 of 12
    rows(toArray(g), d).forEach((r, i) => {
      const top = r
        .map((v, j) => [Math.abs(v), j])
        .sort((a, b) => b[0] - a[0])
        .slice(0, 3)
        .map(([, j]) => j);
      const expected = r.map((v, j) => (top.includes(j) ? Math.sign(v) / 3 : 0));
      expected.forEach((e, j) => {
        expect(got[i][j]).toBeCloseTo(e, 6);
      });
    });
    // At least one coordinate, and a zero gradient stays zero.
    expect(toArray(normalizeGradient(tf.tensor2d([[0.1, -0.5, 0.2]]), 'l1', 1e-6))).toEqual([
      0, -1, 0,
    ]);
    expect(toArray(normalizeGradient(tf.zeros([1, 4]), 'l1'))).toEqual([0, 0, 0, 0]);
  });
});

describe('randomStart', () => {
  const x = tf.fill([400, 2, 2, 1], 0.5); // d = 4

  it.each(NORMS)(
    '%s: lies in the ball, reproducible from the seed, differs across seeds',
    (norm) => {
      const eps = 0.2;
      const a = randomStart(x, eps, norm, new Rng(3));
      const b = randomStart(x, eps, norm, new Rng(3));
      const c = randomStart(x, eps, norm, new Rng(4));
      expect(toArray(a)).toEqual(toArray(b));
      expect(toArray(a)).not.toEqual(toArray(c));
      const n = toArray(perturbationNorms(a, x, norm));
      for (const v of n) expect(v).toBeLessThanOrEqual(eps + 1e-6);
      if (norm !== 'linf') {
        // Uniform in a d-ball: P(‖δ‖ ≤ eps·r) = r^d, so half the mass lies within eps·2^(−1/d).
        // With 400 draws the fraction has sd 0.025; allow 4 sd.
        const inner = n.filter((v) => v <= eps * 0.5 ** (1 / 4)).length / n.length;
        expect(Math.abs(inner - 0.5)).toBeLessThan(0.1);
      } else {
        const deltas = toArray(tf.sub(a, x));
        const meanAbs = deltas.reduce((s, v) => s + Math.abs(v), 0) / deltas.length;
        expect(meanAbs).toBeCloseTo(eps / 2, 2);
      }
      tf.dispose([a, b, c]);
    },
  );
});

describe('no leaks', () => {
  it('every helper returns exactly one tensor', () => {
    const x = tf.fill([3, 4, 4, 1], 0.5);
    const xa = tf.add(x, tf.tensor(values(48, 12, -1, 1), [3, 4, 4, 1]));
    for (const norm of NORMS) {
      const calls = [
        () => projectToBall(xa, x, 0.3, norm),
        () => normalizeGradient(xa, norm),
        () => randomStart(x, 0.3, norm, new Rng(1)),
        () => perturbationNorms(xa, x, norm),
        () => enforceThreatModel(xa, x, 0.3, norm, [0, 1]),
      ];
      for (const call of calls) {
        const before = tf.memory().numTensors;
        const out = call();
        expect(tf.memory().numTensors).toBe(before + 1);
        out.dispose();
      }
    }
    tf.dispose([x, xa]);
  });
});
