import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { deepFool } from '../../src/attacks/evasion/index.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { ParryError } from '../../src/errors.js';
import { AffineClassifier, boundaryDistances } from './affine.js';
import { cnnModel, toArray, values } from './helpers.js';

const overshoot = 0.02;
/** The reference adds 1e-4 to each step's distance before the overshoot. */
const expected = (dist: number) => (1 + overshoot) * (dist + 1e-4);

/** A batch of n examples of dimension d in [-1, 1], labelled with the model's own prediction. */
function batch(model: AffineClassifier, n: number, seed: number) {
  const d = model.weights.length;
  const flat = values(n * d, seed, -1, 1);
  const rows = Array.from({ length: n }, (_, i) => flat.slice(i * d, (i + 1) * d));
  const ys = rows.map((r) => {
    const z = model.logitsOf(r);
    return z.indexOf(Math.max(...z));
  });
  return {
    rows,
    ys,
    x: tf.tensor(flat, [n, ...model.inputShape]),
    labels: tf.tensor1d(ys, 'int32'),
  };
}

const predicted = (model: AffineClassifier, xAdv: tf.Tensor) =>
  toArray(tf.tidy(() => tf.argMax(model.logits(xAdv), 1)));

// Two classes on [2, 3, 1]: logits = x·W + b; bounds [-10, 10] never bind for x in [-1, 1].
const w0 = [0.5, -1.0, 0.25, 2.0, -0.75, 0.1];
const w1 = [-0.3, 0.6, 1.25, -1.5, 0.5, -0.4];
const binary = new AffineClassifier(
  [2, 3, 1],
  w0.map((v, i) => [v, w1[i]]),
  [0.1, -0.1],
);
// Three classes on [4]: every pair of classes has a different boundary.
const ternary = new AffineClassifier(
  [4],
  [
    [1.0, -0.5, 0.3],
    [-0.7, 0.9, 0.2],
    [0.4, 0.1, -1.1],
    [0.2, -0.6, 0.8],
  ],
  [0.05, -0.1, 0.2],
);

describe('deepFool', () => {
  it.each(['l2', 'linf'] as const)(
    '%s on a binary affine model finds the exact boundary distance',
    async (norm) => {
      const { rows, ys, x, labels } = batch(binary, 6, 7);
      const r = await deepFool(binary, x, labels, { norm });
      const got = toArray(r.perturbationNorms);
      rows.forEach((row, i) => {
        const dist = boundaryDistances(binary, row, ys[i])[0][norm];
        expect(got[i]).toBeGreaterThanOrEqual(dist);
        expect(got[i]).toBeCloseTo(expected(dist), 5);
      });
      expect(predicted(binary, r.xAdv)).toEqual(ys.map((y) => 1 - y));
      expect(toArray(r.success)).toEqual(ys.map(() => 1));
      expect(r.gradientEvaluations).toBe(1); // one step, one candidate
    },
  );

  it.each(['l2', 'linf'] as const)(
    '%s on a 3-class affine model steps to the nearest pairwise boundary',
    async (norm) => {
      const { rows, ys, x, labels } = batch(ternary, 8, 11);
      expect(new Set(ys).size).toBeGreaterThan(1);
      const r = await deepFool(ternary, x, labels, { norm });
      const got = toArray(r.perturbationNorms);
      const adv = predicted(ternary, r.xAdv);
      rows.forEach((row, i) => {
        const nearest = Math.min(...boundaryDistances(ternary, row, ys[i]).map((b) => b[norm]));
        expect(got[i]).toBeCloseTo(expected(nearest), 5);
        expect(adv[i]).not.toBe(ys[i]);
      });
      expect(r.gradientEvaluations).toBe(2);
    },
  );

  it('caps the perturbation at eps when given, and counts the stop as a failure', async () => {
    const { x, labels } = batch(binary, 6, 7);
    const r = await deepFool(binary, x, labels, { norm: 'l2', eps: 0.01, steps: 3 });
    for (const n of toArray(r.perturbationNorms)) expect(n).toBeLessThanOrEqual(0.01 + 1e-6);
    const adv = predicted(binary, r.xAdv);
    expect(toArray(r.success)).toEqual(adv.map((p, i) => Number(p !== toArray(labels)[i])));
  });

  it('stays in bounds on cnn-small, fools only where it says so, and is deterministic', async () => {
    const model = cnnModel();
    const x = tf.tensor(values(4 * 64, 5), [4, 8, 8, 1]);
    const labels = tf.tidy(() => tf.cast(tf.argMax(model.logits(x), 1), 'int32')) as tf.Tensor1D;
    const r = await deepFool(model, x, labels, { steps: 20, candidates: 3 });
    const v = toArray(r.xAdv);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    const pred = toArray(tf.tidy(() => tf.argMax(model.logits(r.xAdv), 1)));
    const y = toArray(labels);
    const success = toArray(r.success);
    success.forEach((s, i) => {
      expect(s).toBe(Number(pred[i] !== y[i]));
    });
    expect(success.some((s) => s === 1)).toBe(true);
    const again = await deepFool(model, x, labels, { steps: 20, candidates: 3 });
    expect(toArray(again.xAdv)).toEqual(v);
  });

  it('leaks nothing but the returned tensors', async () => {
    const model = cnnModel();
    const x = tf.tensor(values(2 * 64, 9), [2, 8, 8, 1]);
    const labels = tf.tensor1d([0, 1], 'int32');
    const warm = await deepFool(model, x, labels, { steps: 2 });
    disposeAttackResult(warm);
    const before = tf.memory().numTensors;
    const r = await deepFool(model, x, labels, { steps: 5 });
    expect(tf.memory().numTensors).toBe(before + 4); // xAdv, predictions, success, perturbationNorms
    disposeAttackResult(r);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('aborts cleanly', async () => {
    const { x, labels } = batch(ternary, 4, 3);
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(deepFool(ternary, x, labels, {}, { signal: controller.signal })).rejects.toThrow(
      'stop',
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad configs with BAD_OPTION naming the key', async () => {
    const { x, labels } = batch(binary, 2, 1);
    for (const [config, key] of [
      [{ steps: -1 }, /deepfool: steps:/],
      [{ overshoot: -0.1 }, /deepfool: overshoot:/],
      [{ candidates: 1 }, /deepfool: candidates:/],
      [{ stpes: 3 }, /stpes/],
    ] as const) {
      const e = await deepFool(binary, x, labels, config as never).catch((err) => err);
      expect(e).toBeInstanceOf(ParryError);
      expect((e as ParryError).code).toBe('BAD_OPTION');
      expect((e as ParryError).message).toMatch(key);
    }
  });
});
