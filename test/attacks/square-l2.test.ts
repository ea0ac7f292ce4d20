import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { perturbationNorms } from '../../src/attacks/evasion/projection.js';
import { queryClassifierFrom, square } from '../../src/attacks/evasion/square.js';
import {
  metaPseudoGaussian,
  pseudoGaussianBlock,
  squareL2Propose,
} from '../../src/attacks/evasion/square-l2.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { Rng } from '../../src/engine/rng.js';
import { cnnModel, LinearClassifier, linearBlackBox, toArray, values } from './helpers.js';

// Values computed with numpy from the construction of `pseudo_gaussian_pert_rectangles` and
// `meta_pseudo_gaussian_pert` in max-andr/square-attack (attack.py), re-implemented there.
const BLOCK_3X5 = [
  0.06447421093996819, 0.20954118555489662, 0.20954118555489662, 0.20954118555489662,
  0.06447421093996819, 0.06447421093996819, 0.20954118555489662, 0.7898090840146104,
  0.20954118555489662, 0.06447421093996819, 0.06447421093996819, 0.20954118555489662,
  0.20954118555489662, 0.20954118555489662, 0.06447421093996819,
];
const BLOCK_4X4 = [
  0.06434062009777823, 0.06434062009777823, 0.06434062009777823, 0.06434062009777823,
  0.06434062009777823, 0.20910701531777923, 0.20910701531777923, 0.20910701531777923,
  0.06434062009777823, 0.20910701531777923, 0.7881725961977833, 0.20910701531777923,
  0.06434062009777823, 0.20910701531777923, 0.20910701531777923, 0.20910701531777923,
];
const META_5 = [
  0.04916216460859937, 0.15977703497794796, 0.15977703497794796, 0.15977703497794796,
  0.04916216460859937, 0.04916216460859937, 0.15977703497794796, 0.6022365164553424,
  0.15977703497794796, 0.04916216460859937, -0.0455901517673034, -0.14816799324373606,
  -0.14816799324373606, -0.14816799324373606, -0.0455901517673034, -0.0455901517673034,
  -0.14816799324373606, -0.5584793591494667, -0.14816799324373606, -0.0455901517673034,
  -0.0455901517673034, -0.14816799324373606, -0.14816799324373606, -0.14816799324373606,
  -0.0455901517673034,
];

/**
 * Two classes on [8, 8, 1]: class 1 iff w·x > 0. For x in [0.3, 0.7] every example is class 0,
 * at L2 distance |w·x|/‖w‖ between 0.37 and 0.63 from the boundary, and the closest adversarial
 * point moves no coordinate by more than 0.15, so the bounds [0, 1] never stand in the way.
 */
const w = values(64, 21, -1, 1);
const linear = new LinearClassifier(
  [8, 8, 1],
  w.map((v) => [0, v]),
  [0, 0],
);
const x = tf.keep(tf.tensor(values(4 * 64, 22, 0.3, 0.7), [4, 8, 8, 1]));
const labels = tf.keep(tf.tensor1d([0, 0, 0, 0], 'int32'));
const distances = (() => {
  const v = toArray(x);
  const norm = Math.hypot(...w);
  return [0, 1, 2, 3].map(
    (k) => Math.abs(w.reduce((s, wi, i) => s + wi * v[k * 64 + i], 0)) / norm,
  );
})();

function expectInBallAndBounds(xAdv: tf.Tensor, x0: tf.Tensor, eps: number) {
  for (const n of toArray(perturbationNorms(xAdv, x0, 'l2')))
    expect(n).toBeLessThanOrEqual(eps + 1e-6);
  const v = toArray(xAdv);
  expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
  expect(Math.max(...v)).toBeLessThanOrEqual(1);
}

describe('square (l2)', () => {
  it('builds the reference pseudo-Gaussian blocks', () => {
    const close = (got: ArrayLike<number>, want: number[]) => {
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 14);
    };
    close(pseudoGaussianBlock(3, 5), BLOCK_3X5);
    close(pseudoGaussianBlock(4, 4), BLOCK_4X4);
    // Either orientation of the two-lobed block, with probability 1/2 each.
    const seen = new Set<string>();
    const rng = new Rng(3);
    for (let t = 0; t < 20; t++) {
      const m = metaPseudoGaussian(5, rng);
      // Untransposed, row 0 is a top lobe (m[1] > m[5]); transposed, column 0 is.
      const transposed = m[5] > m[1] ? 'T' : 'N';
      const ref =
        transposed === 'N' ? META_5 : META_5.map((_, i) => META_5[(i % 5) * 5 + Math.floor(i / 5)]);
      close(m, ref);
      seen.add(transposed);
    }
    expect(seen.size).toBe(2);
  });

  it('a proposal moves the mass of window 2 into window 1 and keeps the L2 norm at eps', () => {
    const g = { h: 8, w: 8, ch: 2, d: 128, bounds: [-10, 10] as const };
    const xs = new Float32Array(values(128, 5, -1, 1));
    const delta = values(128, 6, -0.1, 0.1);
    const xBest = Float32Array.from(xs, (v, i) => v + delta[i]);
    const eps = 2;
    const out = squareL2Propose(xs, xBest, [0], g, 3, eps, new Rng(1));
    let sq = 0;
    let changed = 0;
    for (let i = 0; i < 128; i++) {
      sq += (out[i] - xs[i]) ** 2;
      if (Math.abs(out[i] - xBest[i]) > 1e-6) changed++;
    }
    // ‖δ‖ < eps: the unused budget goes into window 1, so δ already has norm eps and the final
    // rescale keeps everything outside the two 3×3 windows (2·9 pixels × 2 channels at most).
    expect(Math.sqrt(sq)).toBeCloseTo(eps * (1 - 1e-6), 5);
    expect(changed).toBeGreaterThan(0);
    expect(changed).toBeLessThanOrEqual(2 * 9 * 2);
  });

  it('breaks the linear model above its boundary distance, by queries alone, in the ball', async () => {
    const model = linearBlackBox(linear);
    const eps = 1;
    expect(Math.max(...distances)).toBeLessThan(eps / 1.5);
    const r = await square(model, x, labels, { eps, norm: 'l2', maxQueries: 1000, seed: 4 });
    expect(r.config.pInit).toBe(0.1);
    expect(toArray(r.success).map(Boolean)).toEqual([true, true, true, true]);
    expect(toArray(tf.argMax(linear.logits(r.xAdv), 1))).toEqual([1, 1, 1, 1]);
    expectInBallAndBounds(r.xAdv, x, eps);
    for (const q of r.queriesPerExample) expect(q).toBeLessThanOrEqual(1000);
    expect(model.calls[0]).toBe(4);
    expect(Array.from(r.queriesPerExample).reduce((a, b) => a + b, 0)).toBe(
      model.calls.reduce((a, b) => a + b, 0),
    );
  });

  it('cannot break it below the distance and then spends exactly the budget', async () => {
    const model = linearBlackBox(linear);
    const eps = 0.95 * Math.min(...distances);
    const r = await square(model, x, labels, { eps, norm: 'l2', maxQueries: 200, seed: 4 });
    expect(toArray(r.success).map(Boolean)).toEqual([false, false, false, false]);
    expect(Array.from(r.queriesPerExample)).toEqual([200, 200, 200, 200]);
    expect(model.calls).toEqual(new Array<number>(200).fill(4));
    expectInBallAndBounds(r.xAdv, x, eps);
  });

  it('eps = 0 returns x; the seed fixes the result', async () => {
    const zero = await square(linearBlackBox(linear), x, labels, { eps: 0, norm: 'l2' });
    expect(toArray(zero.xAdv)).toEqual(toArray(x));
    expect(Array.from(zero.queriesPerExample)).toEqual([1, 1, 1, 1]);
    const c = { eps: 0.3, norm: 'l2' as const, maxQueries: 40 };
    const a = await square(linearBlackBox(linear), x, labels, { ...c, seed: 7 });
    const b = await square(linearBlackBox(linear), x, labels, { ...c, seed: 7 });
    const other = await square(linearBlackBox(linear), x, labels, { ...c, seed: 8 });
    expect(toArray(a.xAdv)).toEqual(toArray(b.xAdv));
    expect(toArray(other.xAdv)).not.toEqual(toArray(a.xAdv));
  });

  it('on a conv model near the bounds stays in the ball and bounds, counts queries, leaks nothing', async () => {
    const net = cnnModel();
    // Values at or near 0 and 1, so clipping is active for most of the perturbation.
    const x0 = tf.tensor(
      values(3 * 64, 8).map((v) => (v < 0.5 ? v * 0.05 : 1 - v * 0.05)),
      [3, 8, 8, 1],
    );
    const y = tf.tensor1d([0, 1, 2], 'int32');
    const warm = await square(queryClassifierFrom(net), x0, y, {
      eps: 1,
      norm: 'l2',
      maxQueries: 3,
    });
    disposeAttackResult(warm);
    const before = tf.memory().numTensors;
    const q = queryClassifierFrom(net);
    const r = await square(q, x0, y, { eps: 1.5, norm: 'l2', maxQueries: 60, seed: 2 });
    expect(tf.memory().numTensors).toBe(before + 4); // the result: xAdv, predictions, success, norms
    expect(q.queries).toBe(Array.from(r.queriesPerExample).reduce((a, b) => a + b, 0));
    expectInBallAndBounds(r.xAdv, x0, 1.5);
    disposeAttackResult(r);
    tf.dispose([x0, y]);
  });
});
