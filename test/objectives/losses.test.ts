import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  countCorrect,
  crossEntropy,
  klDivergence,
  margin,
  smoothedCrossEntropy,
} from '../../src/objectives/losses.js';

// Independent float64 reference implementations in plain JS.
function softmax64(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

const Z = [
  [2.0, -1.0, 0.5],
  [-3.0, 4.0, 1.0],
  [100.0, 99.0, -50.0], // large logits: a naive softmax would overflow
];
const Y = [0, 2, 1];

describe('losses', () => {
  it('cross-entropy equals -log softmax_y, stably', () => {
    const got = tf.tidy(() => crossEntropy(tf.tensor2d(Z), tf.tensor1d(Y, 'int32')).arraySync());
    Z.forEach((z, i) => {
      expect(got[i]).toBeCloseTo(-Math.log(softmax64(z)[Y[i]]), 4);
    });
  });

  it('label smoothing 0 equals cross-entropy; smoothing s matches the closed form', () => {
    const s = 0.1;
    const got = tf.tidy(() =>
      smoothedCrossEntropy(tf.tensor2d(Z), tf.tensor1d(Y, 'int32'), s).arraySync(),
    );
    Z.forEach((z, i) => {
      const p = softmax64(z);
      const want = -p.reduce(
        (acc, pj, j) => acc + ((j === Y[i] ? 1 - s : 0) + s / 3) * Math.log(pj),
        0,
      );
      expect(got[i]).toBeCloseTo(want, 3);
    });
  });

  it('KL divergence matches the float64 sum and is zero for equal inputs', () => {
    const Q = [
      [0, 0, 0],
      [1, 2, 3],
      [99, 100, -50],
    ];
    const got = tf.tidy(() => klDivergence(tf.tensor2d(Z), tf.tensor2d(Q)).arraySync());
    Z.forEach((z, i) => {
      const p = softmax64(z);
      const q = softmax64(Q[i]);
      const want = p.reduce((acc, pj, j) => acc + (pj > 0 ? pj * Math.log(pj / q[j]) : 0), 0);
      expect(got[i]).toBeCloseTo(want, 3);
    });
    const self = tf.tidy(() => klDivergence(tf.tensor2d(Z), tf.tensor2d(Z)).arraySync());
    for (const v of self) expect(Math.abs(v)).toBeLessThan(1e-5);
  });

  it('margin is z_y minus the best other logit', () => {
    const got = tf.tidy(() => margin(tf.tensor2d(Z), tf.tensor1d(Y, 'int32')).arraySync());
    expect(got).toEqual([1.5, -3, -1]);
    const correct = tf.tidy(() =>
      countCorrect(tf.tensor2d(Z), tf.tensor1d(Y, 'int32')).arraySync(),
    );
    expect(correct).toBe(1);
  });

  it('gradients of each loss w.r.t. logits match central finite differences', () => {
    const z0 = [0.3, -0.7, 1.2, 0.1, -0.4, 0.8];
    const q = tf.tensor2d([
      [0.5, -0.2, 0.1],
      [1.0, 0.0, -1.0],
    ]);
    const y = tf.tensor1d([2, 0], 'int32');
    const losses: Record<string, (z: tf.Tensor2D) => tf.Scalar> = {
      ce: (z) => tf.sum(crossEntropy(z, y)),
      smoothed: (z) => tf.sum(smoothedCrossEntropy(z, y, 0.2)),
      kl: (z) => tf.sum(klDivergence(z, q)),
      klReverse: (z) => tf.sum(klDivergence(q, z)),
      margin: (z) => tf.sum(margin(z, y)),
    };
    for (const [name, f] of Object.entries(losses)) {
      const g = tf.tidy(
        () =>
          tf
            .grad((z: tf.Tensor) => f(z as tf.Tensor2D))(tf.tensor2d(z0, [2, 3]))
            .arraySync() as number[][],
      );
      const h = 1e-2;
      for (let i = 0; i < z0.length; i++) {
        const at = (d: number) =>
          tf.tidy(() => {
            const z = [...z0];
            z[i] += d;
            return f(tf.tensor2d(z, [2, 3])).arraySync() as number;
          });
        const fd = (at(h) - at(-h)) / (2 * h);
        expect(Math.abs(g[Math.floor(i / 3)][i % 3] - fd), `${name}[${i}]`).toBeLessThan(2e-3);
      }
    }
    q.dispose();
    y.dispose();
  });
});
