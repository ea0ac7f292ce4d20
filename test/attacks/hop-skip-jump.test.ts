import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  decisionClassifierFrom,
  queryClassifierFrom,
} from '../../src/attacks/evasion/black-box.js';
import { hopSkipJump } from '../../src/attacks/evasion/hop-skip-jump.js';
import { perturbationNorms } from '../../src/attacks/evasion/projection.js';
import { ParryError } from '../../src/errors.js';
import { AffineClassifier, boundaryDistances } from './affine.js';
import { cnnModel, linearBlackBox, toArray, values } from './helpers.js';

/** Two classes on [64]: class 1 iff w·x + 0.3 > 0; bounds [-10, 10] never bind for x in [-1, 1]. */
const d = 64;
const w = values(d, 31, -1, 1);
const binary = new AffineClassifier(
  [d],
  w.map((v) => [0, v]),
  [0, 0.3],
);

/** n examples in [-1, 1], labelled with the model's own prediction. */
function batch(model: AffineClassifier, n: number, seed: number) {
  const dim = model.weights.length;
  const flat = values(n * dim, seed, -1, 1);
  const rows = Array.from({ length: n }, (_, i) => flat.slice(i * dim, (i + 1) * dim));
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

/** Classes of the rows of xAdv by the black box's own float64 arithmetic (the attack's oracle). */
function predicted(model: AffineClassifier, xAdv: tf.Tensor): number[] {
  const v = toArray(xAdv);
  const dim = model.weights.length;
  return Array.from({ length: xAdv.shape[0] }, (_, i) => {
    const z = model.logitsOf(v.slice(i * dim, (i + 1) * dim));
    return z.indexOf(Math.max(...z));
  });
}

const sum = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0);

/**
 * Exact L2 distance from x to the region where class t wins a 3-class affine model: the region is
 * {a_j·z + b_j ≥ 0} for the two other classes j; the closest point lies on one plane (if it
 * satisfies the other constraint) or on both (solving the 2×2 normal equations).
 */
function targetDistance(model: AffineClassifier, x: number[], t: number): number {
  const others = [0, 1, 2].filter((j) => j !== t);
  const a = others.map((j) => model.weights.map((row) => row[t] - row[j]));
  const g = others.map(
    (j, i) => model.bias[t] - model.bias[j] + a[i].reduce((s, v, k) => s + v * x[k], 0),
  );
  const dot = (u: number[], v: number[]) => u.reduce((s, e, k) => s + e * v[k], 0);
  if (g[0] >= 0 && g[1] >= 0) return 0;
  const candidates: number[] = [];
  for (const [i, o] of [
    [0, 1],
    [1, 0],
  ]) {
    if (g[i] >= 0) continue;
    const step = -g[i] / dot(a[i], a[i]);
    if (g[o] + step * dot(a[i], a[o]) >= 0)
      candidates.push(Math.abs(g[i]) / Math.sqrt(dot(a[i], a[i])));
  }
  const [p, q, r] = [dot(a[0], a[0]), dot(a[0], a[1]), dot(a[1], a[1])];
  const det = p * r - q * q;
  const l0 = (-g[0] * r + g[1] * q) / det;
  const l1 = (-g[1] * p + g[0] * q) / det;
  candidates.push(Math.sqrt(l0 * l0 * p + 2 * l0 * l1 * q + l1 * l1 * r));
  return Math.min(...candidates);
}

describe('hopSkipJump', () => {
  it.each(['l2', 'linf'] as const)(
    '%s converges to the exact boundary distance of an affine model, from labels alone',
    async (norm) => {
      const { rows, ys, x, labels } = batch(binary, 4, 32);
      const model = linearBlackBox(binary, { labelsOnly: true });
      const r = await hopSkipJump(model, x, labels, {
        norm,
        maxQueries: 3000,
        steps: 1000,
        seed: 1,
      });
      rows.forEach((row, i) => {
        const exact = boundaryDistances(binary, row, ys[i])[0][norm];
        expect(r.perturbationNorms[i]).toBeGreaterThanOrEqual(exact * (1 - 1e-6));
        expect(r.perturbationNorms[i]).toBeLessThanOrEqual(exact * 1.1);
      });
      expect(r.success).toEqual([true, true, true, true]);
      expect(predicted(binary, r.xAdv)).toEqual(ys.map((y) => 1 - y));
      const measured = toArray(perturbationNorms(r.xAdv, x, norm));
      for (let i = 0; i < 4; i++) expect(measured[i]).toBeCloseTo(r.perturbationNorms[i], 5);
      // Every query counts, per example, within the budget.
      for (const q of r.queries) expect(q).toBeLessThanOrEqual(3000);
      expect(sum(r.queries)).toBe(sum(model.calls));
      expect(r.meanQueries).toBeCloseTo(sum(r.queries) / 4, 12);
    },
  );

  it('reads only the top-1 label: scores and one-hot answers give the same result', async () => {
    const { x, labels } = batch(binary, 3, 5);
    const c = { maxQueries: 500, seed: 9 };
    const scores = await hopSkipJump(linearBlackBox(binary), x, labels, c);
    const onehot = await hopSkipJump(linearBlackBox(binary, { labelsOnly: true }), x, labels, c);
    expect(toArray(scores.xAdv)).toEqual(toArray(onehot.xAdv));
    expect(Array.from(scores.queries)).toEqual(Array.from(onehot.queries));
  });

  it('is reproducible from the seed', async () => {
    const { x, labels } = batch(binary, 3, 6);
    const run = (seed: number) =>
      hopSkipJump(linearBlackBox(binary), x, labels, { maxQueries: 400, seed });
    const [a, b, other] = [await run(3), await run(3), await run(4)];
    expect(toArray(a.xAdv)).toEqual(toArray(b.xAdv));
    expect(Array.from(a.queries)).toEqual(Array.from(b.queries));
    expect(toArray(other.xAdv)).not.toEqual(toArray(a.xAdv));
  });

  it('targeted reaches the target class of a 3-class affine model near the exact distance', async () => {
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
    const { rows, ys, x, labels } = batch(ternary, 8, 11);
    expect(new Set(ys).size).toBe(3);
    const targets = ys.map((y) => (y + 1) % 3);
    const targetLabels = tf.tensor1d(targets, 'int32');
    const model = linearBlackBox(ternary, { labelsOnly: true });
    const r = await hopSkipJump(
      model,
      x,
      labels,
      { targeted: true, maxQueries: 3000, steps: 1000, seed: 2 },
      { targetLabels },
    );
    expect(r.success).toEqual(ys.map(() => true));
    expect(predicted(ternary, r.xAdv)).toEqual(targets);
    rows.forEach((row, i) => {
      const exact = targetDistance(ternary, row, targets[i]);
      expect(r.perturbationNorms[i]).toBeGreaterThanOrEqual(exact * (1 - 1e-6));
      expect(r.perturbationNorms[i]).toBeLessThanOrEqual(exact * 1.1);
    });
    expect(sum(r.queries)).toBe(sum(model.calls));
  });

  it('starts from given startingPoints (one query to verify) and counts it', async () => {
    const { rows, ys, x, labels } = batch(binary, 2, 12);
    // The mirror image of x through the boundary is adversarial: uniform noise is not needed.
    const norm2 = w.reduce((s, v) => s + v * v, 0);
    const mirror = rows.flatMap((row) => {
      const f = binary.logitsOf(row)[1] - binary.logitsOf(row)[0];
      return row.map((v, i) => v - (2 * f * w[i]) / norm2);
    });
    const start = tf.tensor(mirror, x.shape);
    const inner = linearBlackBox(binary, { labelsOnly: true });
    const asked: number[][] = [];
    const model = {
      ...inner,
      predict: async (t: tf.Tensor) => {
        asked.push(Array.from(await t.data()));
        return inner.predict(t);
      },
    };
    const r = await hopSkipJump(
      model,
      x,
      labels,
      { maxQueries: 60, initTrials: 1, seed: 1 },
      { startingPoints: start },
    );
    expect(r.success).toEqual([true, true]);
    expect(predicted(binary, r.xAdv)).toEqual(ys.map((y) => 1 - y));
    // First x itself, then the starting points, for both examples in one call each.
    expect(inner.calls.slice(0, 2)).toEqual([2, 2]);
    expect(asked[0]).toEqual(toArray(x));
    expect(asked[1]).toEqual(Array.from(Float32Array.from(mirror)));
    for (const q of r.queries) expect(q).toBeLessThanOrEqual(60);
    expect(sum(r.queries)).toBe(sum(inner.calls));
  });

  it('an example already misclassified costs one query and is returned as is', async () => {
    const x = tf.tensor([values(d, 40, -1, 1)], [1, d]);
    const y = binary.logitsOf(values(d, 40, -1, 1));
    const wrong = tf.tensor1d([y[0] > y[1] ? 1 : 0], 'int32');
    const r = await hopSkipJump(linearBlackBox(binary), x, wrong, { maxQueries: 100 });
    expect(Array.from(r.queries)).toEqual([1]);
    expect(r.success).toEqual([true]);
    expect(toArray(r.xAdv)).toEqual(toArray(x));
  });

  it('eps stops an example early within the ball; below the distance it is never exceeded', async () => {
    const { rows, ys, x, labels } = batch(binary, 3, 14);
    const exact = rows.map((row, i) => boundaryDistances(binary, row, ys[i])[0].l2);
    const wide = 1.3 * Math.max(...exact);
    const r = await hopSkipJump(linearBlackBox(binary), x, labels, { eps: wide, maxQueries: 3000 });
    expect(r.success).toEqual([true, true, true]);
    for (const q of r.queries) expect(q).toBeLessThan(3000);
    for (const v of toArray(perturbationNorms(r.xAdv, x, 'l2')))
      expect(v).toBeLessThanOrEqual(wide);
    expect(predicted(binary, r.xAdv)).toEqual(ys.map((y) => 1 - y));
    const tight = 0.7 * Math.min(...exact);
    const s = await hopSkipJump(linearBlackBox(binary), x, labels, {
      eps: tight,
      maxQueries: 1000,
    });
    expect(s.success).toEqual([false, false, false]);
    for (const v of toArray(perturbationNorms(s.xAdv, x, 'l2'))) {
      expect(v).toBeLessThanOrEqual(tight + 1e-6);
    }
    expect(predicted(binary, s.xAdv)).toEqual(ys);
  });

  it('on a conv model stays in bounds, counts queries, reports progress and leaks nothing', async () => {
    const net = cnnModel();
    const x = tf.tensor(values(3 * 64, 5), [3, 8, 8, 1]);
    // Labelled with the model's own predictions, so no example starts out misclassified.
    const labels = tf.tidy(() => tf.cast(tf.argMax(net.logits(x), 1), 'int32')) as tf.Tensor1D;
    const y = toArray(labels);
    const warm = await hopSkipJump(queryClassifierFrom(net), x, labels, { maxQueries: 30 });
    warm.xAdv.dispose();
    const before = tf.memory().numTensors;
    const q = decisionClassifierFrom(net);
    const seen: number[] = [];
    const r = await hopSkipJump(
      q,
      x,
      labels,
      { norm: 'linf', maxQueries: 300, batchSize: 64, seed: 2 },
      { onProgress: (spent, max) => seen.push(spent / max) },
    );
    expect(tf.memory().numTensors).toBe(before + 1);
    expect(q.queries).toBe(sum(r.queries));
    for (const v of r.queries) expect(v).toBeLessThanOrEqual(300);
    expect(seen.length).toBeGreaterThan(0);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(Math.max(...seen)).toBeLessThanOrEqual(1);
    const v = toArray(r.xAdv);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    const pred = toArray(tf.tidy(() => tf.argMax(net.logits(r.xAdv), 1)));
    for (let i = 0; i < 3; i++) if (r.success[i]) expect(pred[i]).not.toBe(y[i]);
    expect(r.success.some((ok) => ok)).toBe(true);
    r.xAdv.dispose();
    const start = tf.memory().numTensors;
    const ctl = new AbortController();
    const run = hopSkipJump(
      queryClassifierFrom(net),
      x,
      labels,
      { maxQueries: 300 },
      { signal: ctl.signal, onProgress: (spent) => spent >= 5 && ctl.abort(new Error('stop')) },
    );
    await expect(run).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([x, labels]);
  });

  it('rejects bad configs with a path', async () => {
    const { x, labels } = batch(binary, 1, 1);
    const err = await hopSkipJump(linearBlackBox(binary), x, labels, { maxQueries: 0 }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(ParryError);
    expect((err as ParryError).message).toMatch(/^hsj: maxQueries:/);
    const t = await hopSkipJump(linearBlackBox(binary), x, labels, { targeted: true }).catch(
      (e) => e,
    );
    expect((t as ParryError).message).toMatch(/targetLabels/);
  });
});
