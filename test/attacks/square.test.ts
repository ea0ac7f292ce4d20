import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { perturbationNorms } from '../../src/attacks/evasion/projection.js';
import { queryClassifierFrom, square, squareP } from '../../src/attacks/evasion/square.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { ParryError } from '../../src/errors.js';
import { cnnModel, linearBlackBox, toArray, twoClassModel, values } from './helpers.js';

const linear = twoClassModel();

/** The two-class linear model as a black box answering probabilities computed in JS. */
const blackBox = () => linearBlackBox(linear);

/** x [4, 2, 3, 1] labelled 0 (w·x favours class 0 by a margin that eps = 0.3 can overturn). */
function batch(seed = 1) {
  return {
    x: tf.tensor(values(4 * 6, seed, 0.3, 0.7), [4, 2, 3, 1]),
    labels: tf.tensor1d([0, 0, 0, 0], 'int32'),
  };
}

describe('square (linf)', () => {
  it('follows the paper schedule scaled to the budget', () => {
    expect(squareP(0.05, 0, 10000)).toBe(0.05);
    expect(squareP(0.05, 10, 10000)).toBe(0.05);
    expect(squareP(0.05, 11, 10000)).toBe(0.025);
    expect(squareP(0.05, 201, 10000)).toBe(0.05 / 8);
    expect(squareP(0.05, 9999, 10000)).toBe(0.05 / 512);
    expect(squareP(0.05, 2, 1000)).toBe(0.05 / 2); // 20 of 10 000
  });

  it('breaks the linear model within the budget, in the ball and bounds, by queries alone', async () => {
    const { x, labels } = batch();
    const model = blackBox();
    const r = await square(model, x, labels, { eps: 0.3, maxQueries: 300, seed: 4 });
    expect(toArray(r.success).map(Boolean)).toEqual([true, true, true, true]);
    const pred = toArray(tf.argMax(linear.logits(r.xAdv), 1));
    expect(pred).toEqual([1, 1, 1, 1]);
    const v = toArray(r.xAdv);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    for (const n of toArray(perturbationNorms(r.xAdv, x, 'linf')))
      expect(n).toBeLessThanOrEqual(0.3 + 1e-6);
    for (const q of r.queriesPerExample) expect(q).toBeLessThanOrEqual(300);
    // Queries = rows the black box saw; the first call is the initial check on every example.
    expect(model.calls[0]).toBe(4);
    expect(Array.from(r.queriesPerExample).reduce((a, b) => a + b, 0)).toBe(
      model.calls.reduce((a, b) => a + b, 0),
    );
    expect(r.queries).toBeCloseTo(Array.from(r.queriesPerExample).reduce((a, b) => a + b) / 4, 12);
  });

  it('unbroken examples cost 1 + iterations = maxQueries; broken-at-start ones cost 1', async () => {
    // Example 0 is class 1 from the start (label 0, large w1·x); example 1 cannot be broken.
    const x = tf.tensor([0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 1], [2, 2, 3, 1]);
    const labels = tf.tensor1d([0, 0], 'int32');
    const model = blackBox();
    const r = await square(model, x, labels, { eps: 0.01, maxQueries: 25, seed: 1 });
    expect(Array.from(r.queriesPerExample)).toEqual([1, 25]);
    expect(toArray(r.success).map(Boolean)).toEqual([true, false]);
    expect(model.calls).toEqual([2, ...new Array<number>(24).fill(1)]);
  });

  it('is reproducible from the seed', async () => {
    const { x, labels } = batch(3);
    const c = { eps: 0.05, maxQueries: 40 };
    const a = await square(blackBox(), x, labels, { ...c, seed: 7 });
    const b = await square(blackBox(), x, labels, { ...c, seed: 7 });
    const other = await square(blackBox(), x, labels, { ...c, seed: 8 });
    expect(toArray(a.xAdv)).toEqual(toArray(b.xAdv));
    expect(Array.from(a.queriesPerExample)).toEqual(Array.from(b.queriesPerExample));
    expect(toArray(other.xAdv)).not.toEqual(toArray(a.xAdv));
  });

  it('eps = 0 returns x after the initial query', async () => {
    const { x, labels } = batch();
    const r = await square(blackBox(), x, labels, { eps: 0 });
    expect(toArray(r.xAdv)).toEqual(toArray(x));
    expect(Array.from(r.queriesPerExample)).toEqual([1, 1, 1, 1]);
  });

  it('on a conv model (via queryClassifierFrom) stays in the ball, counts queries, leaks nothing', async () => {
    const net = cnnModel();
    const x = tf.tensor(values(3 * 64, 5), [3, 8, 8, 1]);
    const labels = tf.tensor1d([0, 1, 2], 'int32');
    const warm = await square(queryClassifierFrom(net), x, labels, { eps: 0.1, maxQueries: 3 });
    disposeAttackResult(warm);
    const before = tf.memory().numTensors;
    const q = queryClassifierFrom(net);
    const r = await square(q, x, labels, { eps: 0.1, maxQueries: 50, seed: 2 });
    expect(tf.memory().numTensors).toBe(before + 4); // the result: xAdv, predictions, success, norms
    expect(q.queries).toBe(Array.from(r.queriesPerExample).reduce((a, b) => a + b, 0));
    for (const n of toArray(perturbationNorms(r.xAdv, x, 'linf')))
      expect(n).toBeLessThanOrEqual(0.1 + 1e-6);
    disposeAttackResult(r);
    // Abort on an example the linear black box can never lose (see the query-count test).
    const hard = tf.tensor([1, 0, 0, 1, 0, 1], [1, 2, 3, 1]);
    const y = tf.tensor1d([0], 'int32');
    const start = tf.memory().numTensors;
    const ctl = new AbortController();
    const run = square(
      blackBox(),
      hard,
      y,
      { eps: 0.01, maxQueries: 50 },
      { signal: ctl.signal, onProgress: (s) => s === 3 && ctl.abort(new Error('stop')) },
    );
    await expect(run).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([x, labels, hard, y]);
  });

  it('rejects bad configs with a path', async () => {
    const { x, labels } = batch();
    const err = await square(blackBox(), x, labels, { eps: 0.1, maxQueries: 0 }).catch((e) => e);
    expect(err).toBeInstanceOf(ParryError);
    expect((err as ParryError).message).toMatch(/^square: maxQueries:/);
    const t = await square(blackBox(), x, labels, { eps: 0.1, targeted: true }).catch((e) => e);
    expect((t as ParryError).message).toMatch(/targetLabels/);
  });
});
