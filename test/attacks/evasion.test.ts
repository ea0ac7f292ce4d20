import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  attackObjective,
  fgsm,
  NORMS,
  type Norm,
  perturbationNorms,
  pgd,
} from '../../src/attacks/evasion/index.js';
import { type AttackResult, disposeAttackResult } from '../../src/attacks/result.js';
import { ParryError } from '../../src/errors.js';
import type { Classifier } from '../../src/models/classifier.js';
import { cnnModel, toArray, twoClassModel, values } from './helpers.js';

const linear = twoClassModel();
const d = 6;
const wDiff = linear.weights.map(([w0, w1]) => w1 - w0); // w_other − w_y for label 0

/** x [4, 2, 3, 1], all labelled 0, with coordinates in [lo, hi]. */
function batch(lo: number, hi: number, seed = 1) {
  return {
    x: tf.tensor(values(4 * d, seed, lo, hi), [4, 2, 3, 1]),
    labels: tf.tensor1d([0, 0, 0, 0], 'int32'),
  };
}

const clip01 = (v: number) => Math.min(1, Math.max(0, v));
/** The linf optimum on the linear model: clip(x + eps·sign(w_other − w_y)). */
const linfOptimum = (x: number[], eps: number) =>
  x.map((v, i) => clip01(v + eps * Math.sign(wDiff[i % d])));
/** The l2 optimum when bounds do not bind: x + eps·(w_other − w_y)/‖w_other − w_y‖. */
const l2Norm = Math.hypot(...wDiff);
const l2Optimum = (x: number[], eps: number) => x.map((v, i) => v + (eps * wDiff[i % d]) / l2Norm);
/** The l1 optimum when bounds do not bind: all of eps on the largest |w_other − w_y|. */
const top = wDiff.map(Math.abs).indexOf(Math.max(...wDiff.map(Math.abs)));
const l1Optimum = (x: number[], eps: number) =>
  x.map((v, i) => v + (i % d === top ? eps * Math.sign(wDiff[top]) : 0));

function objective(model: Classifier, xAdv: tf.Tensor, labels: tf.Tensor1D): number[] {
  return tf.tidy(() => toArray(attackObjective(model.logits(xAdv), labels, false, 'ce')));
}

function expectClose(got: number[], expected: number[], digits: number) {
  expect(got.length).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(got[i]).toBeCloseTo(e, digits);
  });
}

describe('fgsm', () => {
  it('linf equals clip(x + eps·sign(w_other − w_y)), including where bounds bind', async () => {
    const { x, labels } = batch(0, 1); // some coordinates near the bounds
    const { xAdv } = await fgsm(linear, x, labels, { eps: 0.1 });
    expectClose(toArray(xAdv), linfOptimum(toArray(x), 0.1), 6);
  });

  it('l2 equals x + eps·(w_other − w_y)/‖w_other − w_y‖ inside the bounds', async () => {
    const { x, labels } = batch(0.3, 0.7);
    const { xAdv } = await fgsm(linear, x, labels, { eps: 0.2, norm: 'l2' });
    expectClose(toArray(xAdv), l2Optimum(toArray(x), 0.2), 5);
  });

  it('targeted descends on the target class loss', async () => {
    const { x, labels } = batch(0.3, 0.7);
    const targetLabels = tf.tensor1d([1, 1, 1, 1], 'int32');
    const { xAdv } = await fgsm(linear, x, labels, { eps: 0.1, targeted: true }, { targetLabels });
    expectClose(toArray(xAdv), linfOptimum(toArray(x), 0.1), 6);
    await expect(fgsm(linear, x, labels, { eps: 0.1, targeted: true })).rejects.toThrow(
      /targetLabels/,
    );
  });
});

describe('pgd', () => {
  it('linf reaches the linf optimum on a linear model', async () => {
    const { x, labels } = batch(0, 1, 2);
    const r = await pgd(linear, x, labels, { eps: 0.1, stepSize: 0.02, steps: 20, seed: 3 });
    expectClose(toArray(r.xAdv), linfOptimum(toArray(x), 0.1), 6);
    expect(r.gradientEvaluations).toBe(20);
  });

  it('l2 reaches x + eps·u when bounds do not bind', async () => {
    const { x, labels } = batch(0.3, 0.7, 3);
    const r = await pgd(linear, x, labels, { eps: 0.2, norm: 'l2', stepSize: 0.05, steps: 100 });
    expectClose(toArray(r.xAdv), l2Optimum(toArray(x), 0.2), 4);
  });

  it('l1 reaches the vertex on the largest weight difference', async () => {
    const { x, labels } = batch(0.3, 0.7, 4);
    const r = await pgd(linear, x, labels, { eps: 0.2, norm: 'l1', stepSize: 0.05, steps: 100 });
    expectClose(toArray(r.xAdv), l1Optimum(toArray(x), 0.2), 4);
  });

  it('targeted reaches the target class', async () => {
    const { x, labels } = batch(0.3, 0.7, 5);
    const targetLabels = tf.tensor1d([1, 1, 1, 1], 'int32');
    const r = await pgd(
      linear,
      x,
      labels,
      { eps: 0.3, steps: 20, targeted: true },
      { targetLabels },
    );
    const pred = toArray(tf.argMax(linear.logits(r.xAdv), 1));
    expect(pred).toEqual([1, 1, 1, 1]);
  });

  it.each(NORMS)('%s: more steps never reduce the loss on the linear model', async (norm) => {
    const { x, labels } = batch(0.2, 0.8, 6);
    let previous = objective(linear, x, labels);
    for (const steps of [1, 2, 5, 10, 20]) {
      const c = { eps: 0.3, norm, steps, stepSize: 0.03, randomStart: false };
      const r = await pgd(linear, x, labels, c);
      const loss = objective(linear, r.xAdv, labels);
      loss.forEach((l, i) => {
        expect(l).toBeGreaterThanOrEqual(previous[i] - 1e-5);
      });
      previous = loss;
      r.xAdv.dispose();
    }
  });

  it.each(NORMS)('%s: restarts never do worse than a single run', async (norm) => {
    const model = cnnModel();
    const x = tf.tensor(values(6 * 64, 7), [6, 8, 8, 1]);
    const labels = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const eps = norm === 'linf' ? 0.05 : norm === 'l2' ? 0.5 : 2;
    const c = { eps, norm, steps: 2, seed: 11, l1Fraction: 0.1 };
    const one = await pgd(model, x, labels, { ...c, restarts: 1 });
    const many = await pgd(model, x, labels, { ...c, restarts: 4 });
    const ok = (t: tf.Tensor) =>
      toArray(tf.notEqual(tf.argMax(model.logits(t), 1), labels)).map(Boolean);
    const [s1, s4] = [ok(one.xAdv), ok(many.xAdv)];
    const [l1, l4] = [objective(model, one.xAdv, labels), objective(model, many.xAdv, labels)];
    s1.forEach((broken, i) => {
      if (broken) expect(s4[i]).toBe(true);
      if (broken === s4[i]) expect(l4[i]).toBeGreaterThanOrEqual(l1[i] - 1e-5);
    });
    expect(many.gradientEvaluations).toBe(8);
  });

  it('reports progress, and aborts cleanly', async () => {
    const { x, labels } = batch(0.3, 0.7);
    const seen: string[] = [];
    const r = await pgd(
      linear,
      x,
      labels,
      { eps: 0.1, steps: 3, restarts: 2 },
      {
        onProgress: (s, n) => seen.push(`${s}/${n}`),
      },
    );
    expect(seen).toEqual(['1/6', '2/6', '3/6', '4/6', '5/6', '6/6']);
    r.xAdv.dispose();
    const before = tf.memory().numTensors;
    const ctl = new AbortController();
    const run = pgd(
      linear,
      x,
      labels,
      { eps: 0.1, steps: 10, restarts: 2 },
      {
        signal: ctl.signal,
        onProgress: (s) => s === 4 && ctl.abort(new Error('stop')),
      },
    );
    await expect(run).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('every attack and norm', () => {
  type Run = (
    m: Classifier,
    x: tf.Tensor,
    y: tf.Tensor1D,
    eps: number,
    n: Norm,
  ) => Promise<AttackResult>;
  const attacks: [string, Norm[], Run][] = [
    ['fgsm', ['linf', 'l2'], (m, x, y, eps, norm) => fgsm(m, x, y, { eps, norm: norm as 'linf' })],
    [
      'pgd',
      ['linf', 'l2', 'l1'],
      (m, x, y, eps, norm) => pgd(m, x, y, { eps, norm, steps: 5, restarts: 2, l1Fraction: 0.1 }),
    ],
  ];
  const cases = attacks.flatMap(([name, norms, run]) => norms.map((n) => [name, n, run] as const));
  const x = tf.tensor(values(5 * 64, 8), [5, 8, 8, 1]);
  const labels = tf.tensor1d([0, 1, 2, 1, 0], 'int32');

  it.each(cases)('%s %s: eps = 0 returns x exactly', async (_, norm, run) => {
    expect(toArray((await run(cnnModel(), x, labels, 0, norm)).xAdv)).toEqual(toArray(x));
    const lin = batch(0, 1);
    const r = await run(linear, lin.x, lin.labels, 0, norm);
    expect(toArray(r.xAdv)).toEqual(toArray(lin.x));
  });

  it.each(cases)(
    '%s %s: stays inside the ball and bounds on a conv model',
    async (_, norm, run) => {
      const eps = norm === 'linf' ? 0.1 : norm === 'l2' ? 1 : 3;
      const { xAdv, perturbationNorms: reported } = await run(cnnModel(), x, labels, eps, norm);
      const v = toArray(xAdv);
      expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...v)).toBeLessThanOrEqual(1);
      const measured = toArray(perturbationNorms(xAdv, x, norm));
      for (const n of measured) expect(n).toBeLessThanOrEqual(eps + 1e-5);
      expect(toArray(reported)).toEqual(measured);
      expect(toArray(xAdv)).not.toEqual(toArray(x));
    },
  );

  it.each(cases)('%s %s: leaks nothing but the returned tensors', async (_, norm, run) => {
    const model = cnnModel();
    await run(model, x, labels, 0.1, norm).then(disposeAttackResult); // warm up lazy weights
    const before = tf.memory().numTensors;
    const r = await run(model, x, labels, 0.1, norm);
    // xAdv, predictions, success, perturbationNorms.
    expect(tf.memory().numTensors).toBe(before + 4);
    disposeAttackResult(r);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('bad input', () => {
  const { x, labels } = batch(0.3, 0.7);
  it('rejects bad configs with a path, and bad tensors', async () => {
    const bad = (e: unknown, code: string, re: RegExp) => {
      expect(e).toBeInstanceOf(ParryError);
      expect((e as ParryError).code).toBe(code);
      expect((e as ParryError).message).toMatch(re);
    };
    bad(await pgd(linear, x, labels, { eps: -1 }).catch((e) => e), 'BAD_OPTION', /^pgd: eps:/);
    bad(
      await pgd(linear, x, labels, { eps: 1, stpes: 3 } as never).catch((e) => e),
      'BAD_OPTION',
      /stpes/,
    );
    bad(
      await pgd(linear, x, labels, { eps: 1, targeted: true }).catch((e) => e),
      'BAD_OPTION',
      /targetLabels/,
    );
    const wrong = tf.zeros([4, 6]);
    bad(
      await pgd(linear, wrong, labels, { eps: 1 }).catch((e) => e),
      'BAD_INPUT',
      /x must have shape/,
    );
    const err = await fgsm(linear, x, tf.tensor1d([0, 1], 'int32'), { eps: 0.1 }).catch((e) => e);
    bad(err, 'BAD_INPUT', /labels must have shape \[4\]/);
  });
});
