/**
 * MI-Face: the cost's gradient (class score and priors) against central finite differences of a
 * float64 cost written here; total variation by hand and by finite differences; the closed form
 * on a linear model; the stopping rules; reconstructions of a model trained on distinct class
 * patterns lying nearest their own class mean; the scores by hand; bad input; no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  classMeans,
  inversionCost,
  inversionGradient,
  miFace,
  scoreInversions,
  totalVariation,
} from '../../../../src/attacks/privacy/inversion/index.js';
import type { Dataset } from '../../../../src/data/dataset.js';
import { Rng } from '../../../../src/engine/rng.js';
import { ParryError } from '../../../../src/errors.js';
import { buildArchitecture, TfjsClassifier } from '../../../../src/models/index.js';
import { trainModel } from '../../../../src/train/loop.js';
import { LinearClassifier, values } from '../../helpers.js';

const H = 3;
const W = 3;
const K = 3;
/** logits = flatten(x)·W + b on [3, 3, 1] inputs, 3 classes. */
const weights = Array.from({ length: H * W }, (_, j) => values(K, 100 + j, -1.5, 1.5));
const bias = [0.2, -0.1, 0.05];
const linear = new LinearClassifier([H, W, 1], weights, bias);

/** Anisotropic TV of one [h, w] single-channel image, per value, in float64. */
function tv64(x: number[], h: number, w: number): number {
  let s = 0;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      if (i + 1 < h) s += Math.abs(x[(i + 1) * w + j] - x[i * w + j]);
      if (j + 1 < w) s += Math.abs(x[i * w + j + 1] - x[i * w + j]);
    }
  }
  return s / (h * w);
}

/** J(x) for the linear model in float64: score + tv·TV + l2·mean((x − ½)²). */
function cost64(
  x: number[],
  c: number,
  o: { score: 'probability' | 'logit'; tv: number; l2: number },
): number {
  const z = bias.map((b, k) => x.reduce((s, v, j) => s + v * weights[j][k], b));
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const score = o.score === 'logit' ? -z[c] : 1 - e[c] / e.reduce((a, b) => a + b, 0);
  const l2 = x.reduce((s, v) => s + (v - 0.5) ** 2, 0) / x.length;
  return score + o.tv * tv64(x, H, W) + o.l2 * l2;
}

/** Central finite differences of `f` at `x`, in float64. */
function numericGradient(f: (x: number[]) => number, x: number[], h = 1e-6): number[] {
  return x.map((_, j) => {
    const up = [...x];
    const down = [...x];
    up[j] += h;
    down[j] -= h;
    return (f(up) - f(down)) / (2 * h);
  });
}

describe('the inversion cost and its gradient', () => {
  for (const score of ['probability', 'logit'] as const) {
    it(`${score} score with TV and L2 priors matches float64 finite differences`, () => {
      const o = { score, tv: 0.3, l2: 0.2 };
      const rows = [values(9, 1, 0.05, 0.95), values(9, 2, 0.05, 0.95)];
      const classes = [2, 0];
      const x = tf.tensor4d(rows.flat(), [2, H, W, 1]);
      const goal = tf.tensor1d(classes, 'int32');
      const { cost, grad } = inversionGradient(linear, x, goal, o);
      const g = grad.arraySync() as number[][][][];
      const costs = cost.arraySync();
      rows.forEach((row, r) => {
        expect(costs[r]).toBeCloseTo(cost64(row, classes[r], o), 5);
        const want = numericGradient((v) => cost64(v, classes[r], o), row);
        want.forEach((w, j) => {
          expect(g[r][Math.floor(j / W)][j % W][0]).toBeCloseTo(w, 4);
        });
      });
      const again = inversionCost(linear, x, goal, o);
      expect(Array.from(again.dataSync())).toEqual(Array.from(cost.dataSync()));
      tf.dispose([x, goal, cost, grad, again]);
    });
  }

  it('total variation: by hand, and its gradient by finite differences', () => {
    // [[0, 1], [3, 7]]: |3−0| + |7−1| down, |1−0| + |7−3| right = 14, over 4 values.
    const small = tf.tensor4d([0, 1, 3, 7], [1, 2, 2, 1]);
    expect(totalVariation(small).dataSync()[0]).toBeCloseTo(14 / 4, 6);
    const row = values(12, 9);
    const x = tf.tensor4d(row, [1, 3, 4, 1]);
    const grad = tf.grad((z: tf.Tensor) => tf.sum(totalVariation(z)))(x);
    const want = numericGradient((v) => tv64(v, 3, 4), row);
    for (const [j, v] of Array.from(grad.dataSync()).entries()) expect(v).toBeCloseTo(want[j], 4);
    tf.dispose([small, x, grad]);
  });
});

describe('miFace', () => {
  it('on a linear model with the logit score reaches the closed form: each pixel at the bound its weight points to', async () => {
    const r = await miFace(linear, [0, 1, 2], { score: 'logit', lr: 0.5, steps: 200, window: 5 });
    const x = r.x.arraySync() as number[][][][];
    for (const [row, c] of r.classes.entries()) {
      weights.forEach((w, j) => {
        expect(x[row][Math.floor(j / W)][j % W][0]).toBe(w[c] > 0 ? 1 : 0);
      });
      expect(r.cost[row]).toBeCloseTo(-weights.reduce((s, w) => s + Math.max(w[c], 0), bias[c]), 5);
    }
    // Once every pixel sits on a bound the cost stays put: the plateau rule stops each class.
    expect(r.stopped).toEqual(['plateau', 'plateau', 'plateau']);
    for (const s of r.steps) expect(s).toBeLessThan(200);
    r.x.dispose();
  });

  it('stops a class at the threshold and returns its best iterate with that cost', async () => {
    // From grey, class 2 starts at cost 0.829 (its best corner of the box reaches 0.021).
    const r = await miFace(linear, [2], { threshold: 0.5, lr: 1, steps: 500, start: 'grey' });
    expect(r.stopped).toEqual(['threshold']);
    expect(r.cost[0]).toBeLessThanOrEqual(0.5);
    expect(r.steps[0]).toBeGreaterThan(0);
    expect(r.steps[0]).toBeLessThan(500);
    const goal = tf.tensor1d([2], 'int32');
    const again = inversionCost(linear, r.x, goal, r.config);
    expect(again.dataSync()[0]).toBeCloseTo(r.cost[0], 6);
    // The start's cost was higher: the descent made progress.
    const grey = tf.fill([1, H, W, 1], 0.5);
    const start = inversionCost(linear, grey, goal, r.config);
    expect(start.dataSync()[0]).toBeGreaterThan(0.5);
    tf.dispose([r.x, goal, again, grey, start]);
  });

  it('starts from zeros, grey, seeded uniform noise, or a given image', async () => {
    const first = async (o: object, start?: tf.Tensor) => {
      const r = await miFace(linear, [0, 1], { steps: 1, lr: 1e-9, window: 1, ...o }, { start });
      const v = Array.from(r.x.dataSync());
      r.x.dispose();
      return v;
    };
    expect((await first({ start: 'zeros' })).every((v) => Math.abs(v) < 1e-6)).toBe(true);
    expect((await first({ start: 'grey' })).every((v) => Math.abs(v - 0.5) < 1e-6)).toBe(true);
    const a = await first({ start: 'uniform', seed: 3 });
    const rng = new Rng(3);
    for (const v of a) expect(v).toBeCloseTo(rng.next(), 5);
    expect(await first({ start: 'uniform', seed: 4 })).not.toEqual(a);
    const given = tf.tensor4d(values(9, 8), [1, H, W, 1]);
    const g = await first({}, given);
    const v = Array.from(given.dataSync());
    for (const [i, x] of g.entries()) expect(x).toBeCloseTo(v[i % 9], 5);
    given.dispose();
  });

  it('leaks no tensors beyond its result', async () => {
    const once = async () => (await miFace(linear, [0, 2], { steps: 5, tv: 0.1, l2: 0.1 })).x;
    (await once()).dispose();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) (await once()).dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses bad classes, priors the model cannot take, bad starts and unknown options', async () => {
    const refusal = async (f: () => Promise<unknown>) => {
      const e = await f().then(
        () => undefined,
        (err) => err,
      );
      expect(e).toBeInstanceOf(ParryError);
      return (e as ParryError).message;
    };
    expect(await refusal(() => miFace(linear, [3]))).toMatch(
      /miFace: class 3 is not a class of the model, which has 3/,
    );
    expect(await refusal(() => miFace(linear, []))).toMatch(/classes must not be empty/);
    const flat = new LinearClassifier(
      [2],
      [
        [1, 0],
        [0, 1],
      ],
      [0, 0],
    );
    expect(await refusal(() => miFace(flat, [0], { tv: 0.1 }))).toMatch(
      /tv needs image inputs \[h, w, c\], the model takes \[2\]/,
    );
    const wrong = tf.zeros([3, 3, 3, 1]);
    expect(await refusal(() => miFace(linear, [0, 1], {}, { start: wrong }))).toMatch(
      /start must have shape \[2, 3, 3, 1\] or \[1, 3, 3, 1\], got \[3, 3, 3, 1\]/,
    );
    wrong.dispose();
    expect(await refusal(() => miFace(linear, [0], { stepz: 3 } as object))).toMatch(
      /miFace: .*stepz/,
    );
    expect(await refusal(() => miFace(linear, [0], { lr: 0 }))).toMatch(/miFace: lr/);
  });

  it('stops when its signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(miFace(linear, [0], {}, { signal: controller.signal })).rejects.toThrow();
  });
});

/** Four classes, each a distinct 8×8 pattern (rows, columns, checkerboard, centre square) plus noise. */
function patterns(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const on = [
    (i: number, _j: number) => i % 2 === 0,
    (_i: number, j: number) => j % 2 === 0,
    (i: number, j: number) => (i + j) % 2 === 0,
    (i: number, j: number) => i >= 2 && i < 6 && j >= 2 && j < 6,
  ];
  const x = new Float32Array(n * 64);
  const labels = new Int32Array(n);
  for (let e = 0; e < n; e++) {
    const k = e % 4;
    labels[e] = k;
    for (let p = 0; p < 64; p++) {
      const v = (on[k](Math.floor(p / 8), p % 8) ? 0.8 : 0.2) + 0.2 * rng.normal();
      x[e * 64 + p] = Math.min(1, Math.max(0, v));
    }
  }
  return { name: 'patterns', x, shape: [n, 8, 8, 1], labels, numClasses: 4 };
}

describe('reconstructions of a trained model', () => {
  it('each class is reconstructed nearer its own class mean than any other', async () => {
    const data = patterns(400, 1);
    const net = buildArchitecture('mlp', { inputShape: [8, 8, 1], numClasses: 4, seed: 1 });
    await trainModel(net, data, { epochs: 10, batchSize: 32, seed: 1 });
    const model = new TfjsClassifier(net);
    const means = classMeans(data, 4);
    const r = await miFace(model, [0, 1, 2, 3], { steps: 300 });
    const scores = await scoreInversions(model, r.x, r.classes, means);
    for (const s of scores) {
      expect(s.nearestClass).toBe(s.class);
      expect(s.distanceOwn).toBeLessThan(s.distanceOthers);
      expect(s.confidence).toBeGreaterThan(0.9);
    }
    r.x.dispose();
    net.dispose();
  });
});

describe('scores', () => {
  it('class means and distances by hand', async () => {
    // Two 1×2 images per class 0, one for class 2, none for class 1.
    const data: Dataset = {
      name: 'tiny',
      x: new Float32Array([0, 1, 1, 1, 0.5, 0]),
      shape: [3, 1, 2, 1],
      labels: new Int32Array([0, 0, 2]),
      numClasses: 3,
    };
    const m = classMeans(data, 3);
    expect(m.counts).toEqual([2, 0, 1]);
    expect(Array.from(m.means[0]!)).toEqual([0.5, 1]);
    expect(m.means[1]).toBeNull();
    expect(Array.from(m.means[2]!)).toEqual([0.5, 0]);
    const model = new LinearClassifier(
      [1, 2, 1],
      [
        [1, 0, -1],
        [0, 1, 0],
      ],
      [0, 0, 0],
    );
    const x = tf.tensor4d([0.5, 0.75, 1, 0], [2, 1, 2, 1]);
    const before = tf.memory().numTensors;
    const [s0, s2] = await scoreInversions(model, x, [0, 2], m);
    expect(tf.memory().numTensors).toBe(before);
    // x0 = (0.5, 0.75): to mean 0 (0.5, 1) 0.25; to mean 2 (0.5, 0) 0.75.
    expect(s0.distanceOwn).toBeCloseTo(0.25, 6);
    expect(s0.distanceOthers).toBeCloseTo(0.75, 6);
    expect(s0.nearestClass).toBe(0);
    expect(Number.isNaN(s0.distances[1])).toBe(true);
    // logits of x0: [0.5, 0.75, −0.5].
    const e = [Math.exp(0.5), Math.exp(0.75), Math.exp(-0.5)];
    expect(s0.confidence).toBeCloseTo(e[0] / (e[0] + e[1] + e[2]), 5);
    // x1 = (1, 0): to mean 2 0.5, to mean 0 √(0.25 + 1).
    expect(s2.distanceOwn).toBeCloseTo(0.5, 6);
    expect(s2.distanceOthers).toBeCloseTo(Math.sqrt(1.25), 6);
    expect(s2.nearestClass).toBe(2);
    x.dispose();
  });
});
