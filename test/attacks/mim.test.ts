import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { mim } from '../../src/attacks/evasion/mim.js';
import { pgd } from '../../src/attacks/evasion/pgd.js';
import { perturbationNorms } from '../../src/attacks/evasion/projection.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { ParryError } from '../../src/errors.js';
import { cnnModel, toArray, twoClassModel, values } from './helpers.js';

const linear = twoClassModel();
const d = 6;
const wDiff = linear.weights.map(([w0, w1]) => w1 - w0); // w_other − w_y for label 0
const clip01 = (v: number) => Math.min(1, Math.max(0, v));

function batch(lo: number, hi: number, seed = 1) {
  return {
    x: tf.tensor(values(4 * d, seed, lo, hi), [4, 2, 3, 1]),
    labels: tf.tensor1d([0, 0, 0, 0], 'int32'),
  };
}

function expectClose(got: number[], expected: number[], tol: number) {
  expect(got.length).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(Math.abs(got[i] - e)).toBeLessThanOrEqual(tol);
  });
}

describe('mim', () => {
  it('linf reaches clip(x + eps·sign(w_other − w_y)) on the linear model', async () => {
    const { x, labels } = batch(0, 1, 2);
    const r = await mim(linear, x, labels, { eps: 0.1, steps: 10 });
    const expected = toArray(x).map((v, i) => clip01(v + 0.1 * Math.sign(wDiff[i % d])));
    expectClose(toArray(r.xAdv), expected, 1e-6);
    expect(r.gradientEvaluations).toBe(10);
    expect(r.config.stepSize).toBeCloseTo(0.01, 12);
  });

  it.each(['linf', 'l2'] as const)(
    '%s: decay 0 equals BIM (pgd without random start)',
    async (norm) => {
      const model = cnnModel();
      const x = tf.tensor(values(3 * 64, 4), [3, 8, 8, 1]);
      const labels = tf.tensor1d([0, 1, 2], 'int32');
      const eps = norm === 'linf' ? 0.1 : 1;
      const c = { eps, norm, steps: 6, stepSize: eps / 4 };
      const a = await mim(model, x, labels, { ...c, decay: 0 });
      const b = await pgd(model, x, labels, { ...c, randomStart: false });
      expectClose(toArray(a.xAdv), toArray(b.xAdv), 1e-6);
    },
  );

  it.each(['linf', 'l2'] as const)(
    '%s: stays in the ball and bounds; eps = 0 returns x',
    async (norm) => {
      const model = cnnModel();
      const x = tf.tensor(values(5 * 64, 8), [5, 8, 8, 1]);
      const labels = tf.tensor1d([0, 1, 2, 1, 0], 'int32');
      const eps = norm === 'linf' ? 0.1 : 1;
      const r = await mim(model, x, labels, { eps, norm, steps: 5, stepSize: eps });
      const v = toArray(r.xAdv);
      expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...v)).toBeLessThanOrEqual(1);
      for (const n of toArray(perturbationNorms(r.xAdv, x, norm)))
        expect(n).toBeLessThanOrEqual(eps + 1e-6);
      const zero = await mim(model, x, labels, { eps: 0, norm, steps: 5 });
      expect(toArray(zero.xAdv)).toEqual(toArray(x));
    },
  );

  it('targeted needs targetLabels; bad configs name the path', async () => {
    const { x, labels } = batch(0.3, 0.7);
    const err = (p: Promise<unknown>) => p.catch((e) => e);
    const e1 = await err(mim(linear, x, labels, { eps: 0.1, targeted: true }));
    expect(e1).toBeInstanceOf(ParryError);
    expect((e1 as ParryError).message).toMatch(/targetLabels/);
    const e2 = await err(mim(linear, x, labels, { eps: 0.1, decay: -1 }));
    expect((e2 as ParryError).message).toMatch(/^mim: decay:/);
  });

  it('leaks nothing but the returned tensor, also when aborted', async () => {
    const model = cnnModel();
    const x = tf.tensor(values(2 * 64, 3), [2, 8, 8, 1]);
    const labels = tf.tensor1d([0, 1], 'int32');
    disposeAttackResult(await mim(model, x, labels, { eps: 0.1, steps: 2 })); // warm up
    const before = tf.memory().numTensors;
    const r = await mim(model, x, labels, { eps: 0.1, steps: 3, randomStart: true, seed: 2 });
    // xAdv, predictions, success, perturbationNorms.
    expect(tf.memory().numTensors).toBe(before + 4);
    disposeAttackResult(r);
    const ctl = new AbortController();
    const run = mim(
      model,
      x,
      labels,
      { eps: 0.1, steps: 10 },
      { signal: ctl.signal, onProgress: (s) => s === 2 && ctl.abort(new Error('stop')) },
    );
    await expect(run).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
  });
});
