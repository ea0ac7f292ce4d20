/**
 * Saliency maps against what they must equal: closed forms on linear and cubic models, central
 * finite differences on a smooth nonlinear model, a Monte Carlo mean of gradients drawn here with
 * our own noise, and the completeness axiom of integrated gradients on the committed reference CNN.
 */
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, takeFirst } from '../../src/data/index.js';
import { initBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/engine/rng.js';
import { isParryError, type ParryErrorCode } from '../../src/errors.js';
import {
  integratedGradients,
  pngDataUri,
  SALIENCY_METHODS,
  saliency,
  saliencyPng,
} from '../../src/explain/index.js';
import type { Classifier } from '../../src/models/classifier.js';
import { loadClassifier, type TfjsClassifier } from '../../src/models/index.js';
import { LinearClassifier, values } from '../attacks/helpers.js';

/** logits = tanh(flatten(x)·W1 + b1)·W2 + b2 on [2, 3, 2]: smooth everywhere, 3 classes. */
class TanhMlp implements Classifier {
  readonly inputShape = [2, 3, 2];
  readonly numClasses = 3;
  readonly bounds: [number, number] = [0, 1];
  private readonly params: tf.Tensor[];

  constructor(seed: number) {
    this.params = [
      tf.tensor2d(values(12 * 8, seed, -0.6, 0.6), [12, 8]),
      tf.tensor1d(values(8, seed + 1, -0.3, 0.3)),
      tf.tensor2d(values(8 * 3, seed + 2, -1.5, 1.5), [8, 3]),
      tf.tensor1d(values(3, seed + 3, -0.2, 0.2)),
    ].map((t) => tf.keep(t));
  }

  logits(x: tf.Tensor): tf.Tensor2D {
    const [w1, b1, w2, b2] = this.params;
    return tf.tidy(() => {
      const h = tf.tanh(tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), w1 as tf.Tensor2D), b1));
      return tf.add(tf.matMul(h, w2 as tf.Tensor2D), b2) as tf.Tensor2D;
    });
  }

  dispose(): void {
    tf.dispose(this.params);
  }
}

/** logits = (flatten(x)³)·W: ∂z_c/∂x_i = 3·W_ic·x_i², so E[∂z_c/∂x_i(x + ε)] = 3W_ic(x_i² + σ²). */
class CubicModel implements Classifier {
  readonly numClasses: number;
  private readonly w: tf.Tensor2D;

  constructor(
    readonly inputShape: number[],
    readonly weights: number[][],
    readonly bounds: [number, number],
  ) {
    this.numClasses = weights[0].length;
    this.w = tf.keep(tf.tensor2d(weights));
  }

  logits(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const v = tf.reshape(x, [x.shape[0], -1]);
      return tf.matMul(tf.mul(tf.mul(v, v), v), this.w);
    });
  }

  dispose(): void {
    this.w.dispose();
  }
}

/**
 * A linear model with dyadic weights (multiples of 1/16) on [2, 3, 1]: with dyadic inputs and a
 * power-of-two step count every float32 operation below is exact, so maps can be compared with ===.
 */
const W = [
  [0.5, -1.25, 0.0625],
  [-0.75, 0.25, 1.5],
  [0.125, 0.875, -0.5],
  [1.0, -0.375, 0.25],
  [-0.0625, 0.5, -1.0],
  [0.3125, -0.625, 0.75],
];
const linear = new LinearClassifier([2, 3, 1], W, [0.1, -0.2, 0.3]);
const X_LIN = [0.25, 0.5, 0.875, 0.125, 1, 0, 0.75, 0.375, 0.625, 0.0625, 0.5, 0.9375];
const CLASSES_LIN = [2, 0];

function column(c: number): number[] {
  return W.map((row) => row[c]);
}

/** Flat per-example expectation: f(example index, coordinate index). */
function perExample(f: (b: number, i: number) => number): number[] {
  return X_LIN.map((_, k) => f(Math.floor(k / 6), k % 6));
}

function read(t: tf.Tensor): number[] {
  const v = Array.from(t.dataSync());
  t.dispose();
  return v;
}

describe('saliency on a linear model (closed forms)', () => {
  it('gradient and SmoothGrad = w_c, integrated gradients = (x − x′)⊙w_c, exactly', () => {
    expect([...SALIENCY_METHODS]).toEqual(['gradient', 'smoothgrad', 'integrated-gradients']);
    const x = tf.tensor(X_LIN, [2, 2, 3, 1]);
    const w = CLASSES_LIN.map(column);
    for (const method of SALIENCY_METHODS) {
      const map = saliency(linear, x, CLASSES_LIN, method, { samples: 8 });
      expect(map.shape, method).toEqual([2, 2, 3, 1]);
      const expected =
        method === 'integrated-gradients'
          ? perExample((b, i) => X_LIN[b * 6 + i] * w[b][i]) // default baseline: lower bound 0
          : perExample((b, i) => w[b][i]);
      expect(read(map), method).toEqual(expected);
    }
    x.dispose();
  });

  it('integrated gradients from a constant and a tensor baseline; delta ≈ 0', () => {
    const x = tf.tensor(X_LIN, [2, 2, 3, 1]);
    const w = CLASSES_LIN.map(column);
    const base = values(12, 3).map((v) => Math.round(v * 16) / 16);
    const cases: [number | tf.Tensor, (k: number) => number][] = [
      [0.25, () => 0.25],
      [tf.tensor(base, [2, 2, 3, 1]), (k) => base[k]],
    ];
    for (const [baseline, b] of cases) {
      const { attributions, delta } = integratedGradients(linear, x, CLASSES_LIN, {
        baseline,
        samples: 16,
      });
      expect(read(attributions)).toEqual(
        perExample((e, i) => (X_LIN[e * 6 + i] - b(e * 6 + i)) * w[e][i]),
      );
      // The logits' bias (0.1, …) is not dyadic: z(x) − z(x′) carries float32 rounding.
      for (const d of delta) expect(Math.abs(d)).toBeLessThan(1e-6);
    }
    // At the default 50 steps the weights 1/50 are inexact: equal to float32 rounding.
    const { attributions, delta } = integratedGradients(linear, x, new Int32Array(CLASSES_LIN));
    const got = read(attributions);
    const want = perExample((e, i) => X_LIN[e * 6 + i] * w[e][i]);
    for (let k = 0; k < want.length; k++) expect(got[k]).toBeCloseTo(want[k], 6);
    for (const d of delta) expect(Math.abs(d)).toBeLessThan(1e-5);
    tf.dispose([x, cases[1][0] as tf.Tensor]);
  });
});

/** Central differences of Σ_b z_{c_b}(x_b), coordinate by coordinate (each touches one example). */
function finiteDifferences(model: Classifier, x0: number[], shape: number[], classes: number[]) {
  const h = 1e-2;
  const f = (v: number[]) =>
    tf.tidy(() => {
      const z = model.logits(tf.tensor(v, shape)).arraySync();
      return classes.reduce((s, c, b) => s + z[b][c], 0);
    });
  return x0.map((_, i) => {
    const plus = [...x0];
    const minus = [...x0];
    plus[i] += h;
    minus[i] -= h;
    return (f(plus) - f(minus)) / (2 * h);
  });
}

describe('gradient saliency on a smooth nonlinear model', () => {
  const shape = [2, 2, 3, 2];
  const x0 = values(24, 17, 0.1, 0.9);
  const classes = [1, 2];

  for (const backend of ['wasm', 'cpu']) {
    it(`matches central finite differences (${backend})`, async () => {
      await initBackend(backend);
      try {
        const model = new TanhMlp(5);
        const x = tf.tensor(x0, shape);
        const analytic = read(saliency(model, x, classes, 'gradient'));
        const numeric = finiteDifferences(model, x0, shape, classes);
        expect(Math.max(...numeric.map(Math.abs))).toBeGreaterThan(0.1); // not a flat spot
        for (let i = 0; i < numeric.length; i++) {
          expect(Math.abs(analytic[i] - numeric[i]), `coordinate ${i}`).toBeLessThan(
            1e-3 * Math.max(1, Math.abs(numeric[i])),
          );
        }
        x.dispose();
        model.dispose();
      } finally {
        await initBackend();
      }
    });
  }
});

/**
 * Our own SmoothGrad: gradients at x + σε with ε from parry's Rng in JS (not tf.randomNormal, as
 * the implementation uses), averaged in float64; also each coordinate's standard error.
 */
function monteCarloSmoothGrad(
  model: Classifier,
  x0: number[],
  shape: number[],
  classes: number[],
  sigma: number,
  n: number,
) {
  const rng = new Rng(2024);
  const size = x0.length;
  const noisy = new Float32Array(n * size);
  for (let k = 0; k < n * size; k++) noisy[k] = x0[k % size] + sigma * rng.normal();
  const grads = tf.tidy(() => {
    const oneHot = tf.tile(tf.oneHot(tf.tensor1d(classes, 'int32'), model.numClasses), [n, 1]);
    const xs = tf.tensor(noisy, [n * shape[0], ...shape.slice(1)]);
    return tf
      .grad((v: tf.Tensor) => tf.sum(tf.mul(model.logits(v), oneHot)))(xs)
      .dataSync();
  });
  const mean = new Float64Array(size);
  const sq = new Float64Array(size);
  for (let k = 0; k < n * size; k++) {
    mean[k % size] += grads[k] / n;
    sq[k % size] += (grads[k] * grads[k]) / n;
  }
  const se = mean.map((m, i) => Math.sqrt(Math.max(0, sq[i] - m * m) / (n - 1)));
  return { mean, se };
}

describe('SmoothGrad', () => {
  const shape = [3, 2, 3, 2];
  const x0 = values(36, 23, 0.1, 0.9);
  const classes = [0, 2, 1];
  let model: TanhMlp;
  let x: tf.Tensor;
  beforeAll(() => {
    model = new TanhMlp(9);
    x = tf.tensor(x0, shape);
  });
  afterAll(() => {
    model.dispose();
    x.dispose();
  });

  it('is reproducible from its seed, across chunks (100 samples of 3 examples: 3 chunks)', () => {
    const a = read(saliency(model, x, classes, 'smoothgrad', { samples: 100, seed: 7 }));
    const b = read(saliency(model, x, classes, 'smoothgrad', { samples: 100, seed: 7 }));
    const c = read(saliency(model, x, classes, 'smoothgrad', { samples: 100, seed: 8 }));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('tends to the gradient as noise → 0 with many samples', () => {
    const grad = read(saliency(model, x, classes, 'gradient'));
    const scale = Math.max(...grad.map(Math.abs));
    for (const noise of [0, 1e-4]) {
      const sg = read(saliency(model, x, classes, 'smoothgrad', { samples: 256, noise }));
      for (let i = 0; i < grad.length; i++) {
        expect(Math.abs(sg[i] - grad[i]), `noise ${noise}, coordinate ${i}`).toBeLessThan(
          2e-5 * scale,
        );
      }
    }
  });

  it('agrees with an independent Monte Carlo mean of gradients (σ = 0.3, 400 samples each)', () => {
    const n = 400;
    const sg = read(saliency(model, x, classes, 'smoothgrad', { samples: n, noise: 0.3, seed: 3 }));
    const { mean, se } = monteCarloSmoothGrad(model, x0, shape, classes, 0.3, n);
    const grad = read(saliency(model, x, classes, 'gradient'));
    let far = 0;
    for (let i = 0; i < sg.length; i++) {
      // Both estimates carry sampling error of about se: their difference has sd ≈ √2·se.
      expect(Math.abs(sg[i] - mean[i]), `coordinate ${i}`).toBeLessThan(5 * Math.SQRT2 * se[i]);
      far = Math.max(far, Math.abs(mean[i] - grad[i]) / se[i]);
    }
    // The noise matters at this σ: the smoothed map is far from the plain gradient.
    expect(far).toBeGreaterThan(10);
  });

  it('matches the closed form 3w(x² + σ²) on a cubic model, σ = noise·(hi − lo)', () => {
    const weights = [[1], [-0.5], [2], [0.75], [-1.5], [1.25]];
    const cubic = new CubicModel([6], weights, [0, 2]);
    const xc = [0.2, 0.5, 0.8, 0.35, 0.65, 0.1];
    const n = 2000;
    const sigma = 0.15 * 2;
    const xt = tf.tensor2d([xc]);
    const sg = read(saliency(cubic, xt, [0], 'smoothgrad', { samples: n, seed: 11 }));
    // Largest deviation from 3w(x² + s²) in standard errors; the sd of one sample's gradient is
    // 3|w|·sd(2xε + ε²) = 3|w|·√(4x²σ² + 2σ⁴).
    const worst = (s: number) =>
      Math.max(
        ...xc.map((xi, i) => {
          const w = weights[i][0];
          const se =
            (3 * Math.abs(w) * Math.sqrt(4 * xi ** 2 * sigma ** 2 + 2 * sigma ** 4)) / Math.sqrt(n);
          return Math.abs(sg[i] - 3 * w * (xi ** 2 + s ** 2)) / se;
        }),
      );
    expect(worst(sigma)).toBeLessThan(4.5);
    // A σ without the range factor, or no noise, would be rejected.
    expect(worst(0.15)).toBeGreaterThan(4.5);
    expect(worst(0)).toBeGreaterThan(4.5);
    xt.dispose();
    cubic.dispose();
  });
});

describe('integrated gradients on fmnist-cnn-small', () => {
  let cnn: TfjsClassifier;
  beforeAll(async () => {
    cnn = await loadClassifier('models/fmnist-cnn-small');
  });
  afterAll(() => cnn.dispose());

  it('completeness at 64 steps: |Σ attr − (z(x) − z(black))| ≤ 1% of |z(x) − z(black)|', () => {
    const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 4);
    const x = tf.tensor(data.x, data.shape);
    const classes = Array.from(data.labels);
    tf.tidy(() => cnn.logits(x)); // warm-up: lazily created weights and kernels
    const before = tf.memory().numTensors;
    const { attributions, delta } = integratedGradients(cnn, x, classes, { samples: 64 });
    expect(attributions.shape).toEqual(data.shape);
    const attr = read(attributions);
    const [zx, zb] = tf.tidy(() => [
      cnn.logits(x).arraySync(),
      cnn.logits(tf.zeros(data.shape)).arraySync(),
    ]);
    expect(tf.memory().numTensors).toBe(before);
    const size = 28 * 28;
    for (let b = 0; b < classes.length; b++) {
      let total = 0;
      for (let k = b * size; k < (b + 1) * size; k++) total += attr[k];
      const rise = zx[b][classes[b]] - zb[b][classes[b]];
      expect(Math.abs(rise), `example ${b}`).toBeGreaterThan(1);
      const gap = total - rise;
      expect(Math.abs(gap), `example ${b}`).toBeLessThanOrEqual(0.01 * Math.abs(rise));
      // The returned delta is the same quantity, computed in float32 inside.
      expect(Math.abs(delta[b] - gap), `example ${b}`).toBeLessThan(1e-4 * Math.abs(rise));
    }
    x.dispose();
  });
});

describe('no tensor leaks', () => {
  it('every method and integratedGradients leave numTensors unchanged', () => {
    const model = new TanhMlp(3);
    const x = tf.tensor(values(24, 4), [2, 2, 3, 2]);
    const baseline = tf.fill([2, 2, 3, 2], 0.5);
    tf.tidy(() => model.logits(x));
    const before = tf.memory().numTensors;
    for (const method of SALIENCY_METHODS) {
      saliency(model, x, [0, 1], method, { samples: 70 }).dispose(); // two chunks
      expect(tf.memory().numTensors, method).toBe(before);
    }
    integratedGradients(model, x, [2, 2], { baseline }).attributions.dispose();
    saliency(model, x, [2, 2], 'integrated-gradients', { baseline }).dispose();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, baseline]);
    model.dispose();
  });
});

describe('saliencyPng', () => {
  /** Heat Σ_c |map| of the [5, 7, 2] test map at (i, j). */
  const heat = (i: number, j: number) =>
    i === 3 && j === 4 ? 4 : i === 1 && j === 2 ? 2 : (i + j) / 20;
  const map: number[] = [];
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 7; j++) map.push(-heat(i, j) / 4, (3 * heat(i, j)) / 4);

  it('decodes to the zoomed size; the largest |attribution| is the one pure red block', () => {
    const png = PNG.sync.read(saliencyPng(map, [5, 7, 2], 3));
    expect([png.width, png.height]).toEqual([21, 15]);
    const at = (y: number, x: number) =>
      Array.from(png.data.subarray((y * 21 + x) * 4, (y * 21 + x) * 4 + 4));
    let reddest = Number.POSITIVE_INFINITY;
    const where: [number, number][] = [];
    for (let y = 0; y < 15; y++) {
      for (let x = 0; x < 21; x++) {
        const [r, g, b, a] = at(y, x);
        expect([r, a, g === b]).toEqual([255, 255, true]);
        if (g < reddest) where.length = 0;
        if (g <= reddest) {
          reddest = g;
          where.push([y, x]);
        }
      }
    }
    expect(reddest).toBe(0);
    expect(where).toHaveLength(9); // the 3×3 block of pixel (3, 4)
    for (const [y, x] of where) expect([Math.floor(y / 3), Math.floor(x / 3)]).toEqual([3, 4]);
    expect(at(1 * 3 + 1, 2 * 3)).toEqual([255, 128, 128, 255]); // half the maximum: 255·(1 − ½)
    expect(at(0, 0)).toEqual([255, 255, 255, 255]); // zero: white
  });

  it('accepts [h, w]; an all-zero map is white; pngDataUri embeds the same bytes', () => {
    const png = saliencyPng(new Float32Array(6), [2, 3]);
    const decoded = PNG.sync.read(png);
    expect([decoded.width, decoded.height]).toEqual([12, 8]);
    expect(decoded.data.every((v) => v === 255)).toBe(true);
    const uri = pngDataUri(png);
    expect(uri.startsWith('data:image/png;base64,')).toBe(true);
    expect(Buffer.from(uri.slice(22), 'base64').equals(png)).toBe(true);
  });
});

describe('bad inputs', () => {
  function expectError(f: () => unknown, code: ParryErrorCode, message: RegExp) {
    let error: unknown;
    try {
      f();
    } catch (e) {
      error = e;
    }
    expect(isParryError(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(message);
    expect((error as { code: string }).code).toBe(code);
  }

  it('are rejected with a message naming the function, the argument and the value', () => {
    const x = tf.tensor(X_LIN, [2, 2, 3, 1]);
    const flat = tf.zeros([2, 6]);
    const ints = tf.zeros([2, 2, 3, 1], 'int32');
    const nan = tf.tensor([...X_LIN.slice(0, 11), Number.NaN], [2, 2, 3, 1]);
    const inf = tf.tensor([Number.POSITIVE_INFINITY, ...X_LIN.slice(1)], [2, 2, 3, 1]);
    const wrongBaseline = tf.zeros([1, 2, 3, 1]);
    const nanBaseline = tf.fill([2, 2, 3, 1], Number.NaN);
    const before = tf.memory().numTensors;
    const g =
      (t: tf.Tensor, classes: number[] = [0, 1]) =>
      () =>
        saliency(linear, t, classes, 'gradient');
    expectError(
      g(flat),
      'BAD_INPUT',
      /^saliency: x must have shape \[batch, 2,3,1\], got \[2,6\]$/,
    );
    expectError(g(ints), 'BAD_INPUT', /x must be float32, got int32/);
    expectError(g(x, [0]), 'BAD_INPUT', /classes must have one entry per example \(2\), got 1/);
    expectError(g(x, [0, 3]), 'BAD_INPUT', /classes\[1\] must be an integer in \[0, 3\), got 3/);
    expectError(g(x, [-1, 0]), 'BAD_INPUT', /classes\[0\] .* got -1/);
    expectError(g(x, [0, 1.5]), 'BAD_INPUT', /classes\[1\] .* got 1.5/);
    expectError(g(nan), 'BAD_INPUT', /x has NaN or infinite values/);
    expectError(g(inf), 'BAD_INPUT', /x has NaN or infinite values/);
    const s = (method: string, options: object) => () =>
      saliency(linear, x, [0, 1], method as 'gradient', options);
    expectError(
      s('lime', {}),
      'BAD_OPTION',
      /method must be one of gradient, smoothgrad, integrated-gradients, got 'lime'/,
    );
    expectError(s('smoothgrad', { samples: 0 }), 'BAD_OPTION', /^saliency: samples: /);
    expectError(s('smoothgrad', { samples: 2.5 }), 'BAD_OPTION', /^saliency: samples: /);
    expectError(s('smoothgrad', { noise: -0.1 }), 'BAD_OPTION', /^saliency: noise: /);
    expectError(s('smoothgrad', { seed: -1 }), 'BAD_OPTION', /^saliency: seed: /);
    expectError(s('smoothgrad', { steps: 10 }), 'BAD_OPTION', /^saliency: .*steps/);
    expectError(
      s('integrated-gradients', { baseline: wrongBaseline }),
      'BAD_INPUT',
      /baseline must have x's shape \[2,2,3,1\], got \[1,2,3,1\]/,
    );
    expectError(
      s('integrated-gradients', { baseline: Number.NaN }),
      'BAD_OPTION',
      /^saliency: baseline: /,
    );
    expectError(
      () => integratedGradients(linear, x, [0, 1], { baseline: nanBaseline }),
      'BAD_INPUT',
      /^integratedGradients: baseline has NaN or infinite values$/,
    );
    expectError(
      () => integratedGradients(linear, flat, [0, 1]),
      'BAD_INPUT',
      /^integratedGradients: x must have shape/,
    );
    expectError(
      () => saliencyPng([1, 2, 3], [2, 2]),
      'BAD_INPUT',
      /map has 3 values, shape \[2,2\] needs 4/,
    );
    expectError(() => saliencyPng([1], [1]), 'BAD_INPUT', /shape must be \[h, w, c\] or \[h, w\]/);
    expectError(() => saliencyPng([1, Number.NaN], [1, 2]), 'BAD_INPUT', /NaN or infinite/);
    expectError(
      () => saliencyPng([1], [1, 1], 0),
      'BAD_OPTION',
      /zoom must be an integer >= 1, got 0/,
    );
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, flat, ints, nan, inf, wrongBaseline, nanBaseline]);
  });
});
