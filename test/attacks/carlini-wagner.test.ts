import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { carliniWagner } from '../../src/attacks/evasion/index.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { ParryError } from '../../src/errors.js';
import { AffineClassifier, boundaryDistances } from './affine.js';
import { cnnModel, toArray, values } from './helpers.js';

// Two classes on [6], bounds [-2, 2]; examples in [-0.5, 0.5] sit well inside them.
const w0 = [0.5, -1.0, 0.25, 2.0, -0.75, 0.1];
const w1 = [-0.3, 0.6, 1.25, -1.5, 0.5, -0.4];
const binary = new AffineClassifier(
  [6],
  w0.map((v, i) => [v, w1[i]]),
  [0.1, -0.1],
  [-2, 2],
);
const wDiffNorm = Math.hypot(...w0.map((v, i) => w1[i] - v));

function batch(n: number, seed: number) {
  const flat = values(n * 6, seed, -0.5, 0.5);
  const rows = Array.from({ length: n }, (_, i) => flat.slice(i * 6, (i + 1) * 6));
  const ys = rows.map((r) => {
    const z = binary.logitsOf(r);
    return z[1] > z[0] ? 1 : 0;
  });
  return { rows, ys, x: tf.tensor2d(rows), labels: tf.tensor1d(ys, 'int32') };
}

const config = { steps: 300, binarySearchSteps: 9, initialConst: 1e-2, lr: 0.01 };

/** max_{j≠y} z_j − z_y per example (positive when misclassified). */
function margins(xAdv: tf.Tensor, ys: number[]): number[] {
  const z = toArray(tf.tidy(() => binary.logits(xAdv)));
  return ys.map((y, i) => z[2 * i + 1 - y] - z[2 * i + y]);
}

describe('carliniWagner', () => {
  it('finds the exact L2 boundary distance on a binary affine model, from above', async () => {
    const { rows, ys, x, labels } = batch(6, 4);
    const r = await carliniWagner(binary, x, labels, config);
    expect(toArray(r.success)).toEqual(ys.map(() => 1));
    const got = toArray(r.perturbationNorms);
    rows.forEach((row, i) => {
      const dist = boundaryDistances(binary, row, ys[i])[0].l2;
      expect(got[i]).toBeGreaterThanOrEqual(dist * (1 - 1e-5));
      expect(got[i]).toBeLessThanOrEqual(dist * 1.05);
    });
    for (const m of margins(r.xAdv, ys)) expect(m).toBeGreaterThan(0);
    const v = toArray(r.xAdv);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...v)).toBeLessThanOrEqual(2);
  });

  it('with confidence κ reaches margin ≥ κ at about (f + κ)/‖w‖', async () => {
    const { rows, ys, x, labels } = batch(4, 8);
    const confidence = 0.5;
    const r = await carliniWagner(binary, x, labels, { ...config, confidence });
    expect(toArray(r.success)).toEqual(ys.map(() => 1));
    for (const m of margins(r.xAdv, ys)) expect(m).toBeGreaterThanOrEqual(confidence - 1e-3);
    const got = toArray(r.perturbationNorms);
    rows.forEach((row, i) => {
      const dist = boundaryDistances(binary, row, ys[i])[0].l2 + confidence / wDiffNorm;
      expect(got[i]).toBeGreaterThanOrEqual(dist * (1 - 1e-4));
      expect(got[i]).toBeLessThanOrEqual(dist * 1.05);
    });
  });

  it('targeted reaches the target class', async () => {
    const { ys, x, labels } = batch(4, 12);
    const targetLabels = tf.tensor1d(
      ys.map((y) => 1 - y),
      'int32',
    );
    const r = await carliniWagner(
      binary,
      x,
      labels,
      { ...config, targeted: true },
      { targetLabels },
    );
    expect(toArray(tf.tidy(() => tf.argMax(binary.logits(r.xAdv), 1)))).toEqual(
      toArray(targetLabels),
    );
  });

  it('on cnn-small: in bounds, successes misclassified, failures unchanged, deterministic', async () => {
    const model = cnnModel();
    const x = tf.tensor(values(4 * 64, 5), [4, 8, 8, 1]);
    const labels = tf.tidy(() => tf.cast(tf.argMax(model.logits(x), 1), 'int32')) as tf.Tensor1D;
    const c = { steps: 30, binarySearchSteps: 4, initialConst: 1, lr: 0.05 };
    const r = await carliniWagner(model, x, labels, c);
    const v = toArray(r.xAdv);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    const pred = toArray(tf.tidy(() => tf.argMax(model.logits(r.xAdv), 1)));
    const y = toArray(labels);
    const xs = toArray(x);
    const success = toArray(r.success);
    expect(success.some((s) => s === 1)).toBe(true);
    success.forEach((s, i) => {
      if (s) expect(pred[i]).not.toBe(y[i]);
      else expect(v.slice(i * 64, (i + 1) * 64)).toEqual(xs.slice(i * 64, (i + 1) * 64));
    });
    const again = await carliniWagner(model, x, labels, c);
    expect(toArray(again.xAdv)).toEqual(v);
    expect(again.gradientEvaluations).toBe(r.gradientEvaluations);
  });

  it('leaks nothing but the returned tensors', async () => {
    const model = cnnModel();
    const x = tf.tensor(values(2 * 64, 9), [2, 8, 8, 1]);
    const labels = tf.tensor1d([0, 1], 'int32');
    const c = { steps: 5, binarySearchSteps: 2 };
    const warm = await carliniWagner(model, x, labels, c);
    disposeAttackResult(warm);
    const before = tf.memory().numTensors;
    const r = await carliniWagner(model, x, labels, c);
    expect(tf.memory().numTensors).toBe(before + 4); // xAdv, predictions, success, perturbationNorms
    disposeAttackResult(r);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('aborts cleanly', async () => {
    const { x, labels } = batch(2, 3);
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    let calls = 0;
    const run = carliniWagner(binary, x, labels, config, {
      signal: controller.signal,
      onProgress: () => {
        if (++calls === 3) controller.abort(new Error('stop'));
      },
    });
    await expect(run).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad configs with BAD_OPTION naming the key', async () => {
    const { x, labels } = batch(2, 1);
    for (const [bad, key] of [
      [{ steps: -1 }, /carliniWagner: steps:/],
      [{ binarySearchSteps: 0 }, /carliniWagner: binarySearchSteps:/],
      [{ confidence: -1 }, /carliniWagner: confidence:/],
      [{ stpes: 3 }, /stpes/],
      [{ targeted: true }, /targetLabels/],
    ] as const) {
      const e = await carliniWagner(binary, x, labels, bad as never).catch((err) => err);
      expect(e).toBeInstanceOf(ParryError);
      expect((e as ParryError).code).toBe('BAD_OPTION');
      expect((e as ParryError).message).toMatch(key);
    }
  });
});
