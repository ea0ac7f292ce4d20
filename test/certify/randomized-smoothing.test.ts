import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  ABSTAIN,
  certify,
  clopperPearsonLower,
  normalQuantile,
  predict,
  sampleCounts,
} from '../../src/certify/index.js';
import { Rng } from '../../src/engine/rng.js';
import { ParryError } from '../../src/errors.js';
import type { Classifier } from '../../src/models/classifier.js';

/** Binary linear classifier: logits [0, w·x + b], so class 1 iff w·x + b > 0. */
function linear(w: number[], b: number): Classifier {
  return {
    inputShape: [w.length],
    numClasses: 2,
    bounds: [-10, 10],
    logits: (x) =>
      tf.tidy(() => {
        const s = tf.add(
          tf.matMul(tf.reshape(x, [-1, w.length]), tf.tensor2d(w, [w.length, 1])),
          b,
        );
        return tf.concat([tf.zerosLike(s), s], 1) as tf.Tensor2D;
      }),
  };
}

/** Always class 0 of 3, whatever the input. */
const constant: Classifier = {
  inputShape: [4],
  numClasses: 3,
  bounds: [0, 1],
  logits: (x) =>
    tf.tidy(() => tf.add(tf.zeros([x.shape[0], 3]), tf.tensor2d([[1, 0, 0]])) as tf.Tensor2D),
};

describe('randomized smoothing on a linear classifier', () => {
  // w·x + b = 3·0.5 + 4·0.25 − 2 = 0.5, ‖w‖ = 5, so d = 0.1 and p_A = Φ(d/σ) = Φ(1) for σ = 0.1.
  const model = linear([3, 4], -2);
  const x = tf.tensor1d([0.5, 0.25]);
  const d = 0.1;
  const sigma = 0.1;

  it('certified radius never exceeds d and approaches it as n grows', async () => {
    const small = await certify(model, x, { n0: 100, n: 1000, sigma, alpha: 0.001 }, new Rng(1));
    const large = await certify(
      model,
      x,
      { n0: 100, n: 100_000, sigma, alpha: 0.001, batchSize: 10_000 },
      new Rng(1),
    );
    for (const r of [small, large]) {
      expect(r.prediction).toBe(1);
      expect(r.radius).toBeGreaterThan(0);
      expect(r.radius).toBeLessThanOrEqual(d);
      expect(r.radius).toBeCloseTo(sigma * normalQuantile(r.pALower), 12);
    }
    expect(small.forwardPasses).toBe(1100);
    expect(large.forwardPasses).toBe(100_100);
    expect(large.counts[0] + large.counts[1]).toBe(100_000);
    // The Clopper–Pearson gap shrinks like 1/√n: ~0.15σ at n = 1e3, ~0.015σ at n = 1e5.
    expect(large.radius).toBeGreaterThan(small.radius);
    expect(d - large.radius).toBeLessThan(0.03 * sigma);
    expect(d - small.radius).toBeLessThan(0.35 * sigma);
    // The class-1 frequency estimates p_A = Φ(1) = 0.8413… (6 standard errors at n = 1e5).
    expect(Math.abs(large.counts[1] / 100_000 - 0.8413447460685429)).toBeLessThan(0.007);
  });

  it('predict returns the class on the far side of the boundary', async () => {
    expect(await predict(model, x, { n: 1000, sigma }, new Rng(2))).toBe(1);
    const xNeg = tf.tensor1d([0.1, 0.1]); // w·x + b = −1.3, d = 0.26
    expect(await predict(model, xNeg, { n: 1000, sigma }, new Rng(2))).toBe(0);
    xNeg.dispose();
  });

  it('is reproducible from the seed', async () => {
    const a = await sampleCounts(model, x, 5000, sigma, 700, new Rng(7));
    const b = await sampleCounts(model, x, 5000, sigma, 700, new Rng(7));
    const c = await sampleCounts(model, x, 5000, sigma, 700, new Rng(8));
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    const r1 = await certify(model, x, { n: 2000, sigma }, new Rng(3));
    const r2 = await certify(model, x, { n: 2000, sigma }, new Rng(3));
    expect(r1).toEqual(r2);
    expect(r1.seed).toBe(3);
  });
});

describe('randomized smoothing, closed forms', () => {
  it('certifies a constant classifier with p̲_A = alpha^(1/n)', async () => {
    const x = tf.fill([4], 0.5);
    const n = 1000;
    const alpha = 0.001;
    const sigma = 0.5;
    const r = await certify(constant, x, { n0: 10, n, alpha, sigma, batchSize: 300 }, new Rng(4));
    expect(r.prediction).toBe(0);
    expect(r.counts).toEqual([n, 0, 0]);
    expect(Math.abs(r.pALower - alpha ** (1 / n))).toBeLessThan(1e-13);
    expect(r.pALower).toBe(clopperPearsonLower(n, n, alpha));
    expect(Math.abs(r.radius - sigma * normalQuantile(alpha ** (1 / n)))).toBeLessThan(1e-11);
    expect(await predict(constant, x, { n: 100, sigma }, new Rng(4))).toBe(0);
    x.dispose();
  });

  it('abstains when the two classes tie (x on the boundary of sign(x₀))', async () => {
    const model = linear([1, 0, 0], 0);
    const x = tf.zeros([1, 3]); // [1, ...inputShape] is accepted too
    for (const seed of [1, 2, 3]) {
      expect(await predict(model, x, { n: 1000, sigma: 0.25 }, new Rng(seed))).toBe(ABSTAIN);
      const r = await certify(model, x, { n: 1000, sigma: 0.25 }, new Rng(seed));
      expect(r.prediction).toBe(ABSTAIN);
      expect(r.radius).toBe(0);
      expect(r.pALower).toBeLessThan(0.5);
    }
    x.dispose();
  });
});

describe('randomized smoothing hygiene', () => {
  const model = linear([1, 1], 0);

  it('leaks no tensors', async () => {
    const x = tf.tensor1d([0.2, 0.1]);
    const before = tf.memory().numTensors;
    await sampleCounts(model, x, 250, 0.5, 100, new Rng(1));
    await predict(model, x, { n: 250, sigma: 0.5, batchSize: 100 }, new Rng(1));
    await certify(model, x, { n0: 20, n: 250, sigma: 0.5, batchSize: 100 }, new Rng(1));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('refuses to count noisy copies whose logits are NaN or infinite, leaking nothing', async () => {
    const broken: Classifier = {
      ...model,
      logits: (z) => tf.fill([z.shape[0], 2], Number.NaN) as tf.Tensor2D,
    };
    const x = tf.tensor1d([0.2, 0.1]);
    const before = tf.memory().numTensors;
    await expect(sampleCounts(broken, x, 250, 0.5, 100, new Rng(1))).rejects.toMatchObject({
      code: 'BAD_INPUT',
      message: expect.stringMatching(/logits are NaN or infinite on noisy copies/),
    });
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('rejects bad options with a path, and bad inputs', async () => {
    const x = tf.tensor1d([0.2, 0.1]);
    const rng = new Rng(1);
    await expect(certify(model, x, { n: 0, sigma: 1 }, rng)).rejects.toThrow(/^certify: n: /);
    await expect(certify(model, x, { sigma: -1 }, rng)).rejects.toThrow(/certify: sigma: /);
    await expect(predict(model, x, { n: 10 } as never, rng)).rejects.toThrow(/predict: sigma: /);
    await expect(predict(model, x, { sigma: 1, alpha: 1 }, rng)).rejects.toThrow(/alpha/);
    await expect(predict(model, x, { sigma: 1, typo: 3 } as never, rng)).rejects.toMatchObject({
      code: 'BAD_OPTION',
    });
    const wrong = tf.zeros([2, 2]);
    await expect(sampleCounts(model, wrong, 10, 1, 10, rng)).rejects.toThrow(ParryError);
    await expect(sampleCounts(model, wrong, 10, 1, 10, rng)).rejects.toMatchObject({
      code: 'BAD_INPUT',
    });
    wrong.dispose();
    x.dispose();
  });
});
