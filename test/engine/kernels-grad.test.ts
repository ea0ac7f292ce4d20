/**
 * Gradients through the ops that use parry's wasm kernels: tf.grad on wasm against tf.grad on
 * cpu, and against central finite differences of the wasm forward op.
 *
 * The finite-difference losses are sums of squares of linear maps (conv, depthwise conv, average
 * pool), for which central differences are exact up to float32 rounding, so eps = 1e-2 costs no
 * accuracy; max pooling is piecewise linear and is probed with eps = 1e-3 on untied random data.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { randomData, relError, valuesOn } from './kernels-helpers.js';

const TOL = 1e-4;

/** Gradients of `loss` w.r.t. each input, on one backend, concatenated. */
async function gradsOn(
  backend: string,
  shapes: number[][],
  loss: (...xs: tf.Tensor[]) => tf.Scalar,
): Promise<Float32Array> {
  return valuesOn(backend, () =>
    tf.tidy(() => {
      const xs = shapes.map((s, i) => tf.tensor(randomData(10 + i, s), s));
      const grads = tf.grads(loss)(xs);
      return tf.concat(grads.map((g) => tf.reshape(g, [-1])));
    }),
  );
}

async function expectSameGrads(shapes: number[][], loss: (...xs: tf.Tensor[]) => tf.Scalar) {
  const wasm = await gradsOn('wasm', shapes, loss);
  const cpu = await gradsOn('cpu', shapes, loss);
  expect(relError(wasm, cpu)).toBeLessThan(TOL);
}

/** A fixed random weighting of the output, so every output element gets its own dy. */
function weighted(y: tf.Tensor, seed = 99): tf.Scalar {
  return tf.sum(tf.mul(y, tf.tensor(randomData(seed, y.shape), y.shape)));
}

describe('tf.grad on wasm matches cpu', () => {
  const convCases: [number[], number[], number, 'same' | 'valid'][] = [
    [[2, 9, 9, 3], [3, 3, 3, 8], 1, 'valid'],
    [[2, 9, 9, 3], [3, 3, 3, 8], 2, 'same'],
    [[1, 8, 7, 4], [5, 5, 4, 5], 2, 'valid'],
    [[3, 6, 6, 1], [1, 1, 1, 6], 1, 'same'],
  ];
  for (const [xs, fs, s, pad] of convCases) {
    it(`conv2d x [${xs}] filter [${fs}] stride ${s} ${pad}`, async () => {
      await expectSameGrads([xs, fs], (x, f) =>
        weighted(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, s, pad)),
      );
    });
    it(`fused conv2d + bias + relu, x [${xs}] filter [${fs}] stride ${s} ${pad}`, async () => {
      await expectSameGrads([xs, fs, [fs[3]]], (x, f, b) =>
        weighted(
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: f as tf.Tensor4D,
            strides: s,
            pad,
            bias: b,
            activation: 'relu',
          }),
        ),
      );
    });
    it(`conv2dTranspose dy [${xs}] filter [${fs}] stride ${s} ${pad}`, async () => {
      const [b, h, w] = xs;
      const size = (n: number, k: number) => (pad === 'same' ? n * s : (n - 1) * s + k);
      const out = [b, size(h, fs[0]), size(w, fs[1]), fs[2]] as [number, number, number, number];
      const f = [fs[0], fs[1], fs[2], xs[3]];
      await expectSameGrads([xs, f], (x, k) =>
        weighted(tf.conv2dTranspose(x as tf.Tensor4D, k as tf.Tensor4D, out, s, pad)),
      );
    });
  }

  const depthwiseCases: [number[], number[], number, 'same' | 'valid'][] = [
    [[2, 9, 9, 3], [3, 3, 3, 1], 1, 'same'],
    [[2, 9, 8, 3], [3, 3, 3, 2], 2, 'same'],
    [[1, 7, 7, 8], [5, 5, 8, 2], 1, 'valid'],
  ];
  for (const [xs, fs, s, pad] of depthwiseCases) {
    it(`depthwiseConv2d x [${xs}] filter [${fs}] stride ${s} ${pad}`, async () => {
      await expectSameGrads([xs, fs], (x, f) =>
        weighted(tf.depthwiseConv2d(x as tf.Tensor4D, f as tf.Tensor4D, s, pad)),
      );
    });
  }

  const poolCases: [number[], number, number, 'same' | 'valid'][] = [
    [[2, 8, 8, 4], 2, 2, 'valid'],
    [[1, 9, 7, 3], 3, 2, 'same'],
    [[2, 6, 6, 2], 3, 1, 'same'],
  ];
  for (const [xs, f, s, pad] of poolCases) {
    it(`maxPool x [${xs}] ${f}x${f} stride ${s} ${pad}`, async () => {
      await expectSameGrads([xs], (x) => weighted(tf.maxPool(x as tf.Tensor4D, f, s, pad)));
    });
  }
  it('avgPool (valid padding, where tfjs cpu is exact)', async () => {
    await expectSameGrads([[2, 8, 8, 4]], (x) =>
      weighted(tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid')),
    );
  });

  it('dense layer: fused matMul + bias + relu, then a plain matMul, and transposed products', async () => {
    await expectSameGrads([[6, 40], [40, 12], [12], [12, 5]], (x, w1, b1, w2) => {
      const h = tf.fused.matMul({
        a: x as tf.Tensor2D,
        b: w1 as tf.Tensor2D,
        bias: b1,
        activation: 'relu',
      });
      return weighted(tf.matMul(h, w2 as tf.Tensor2D));
    });
    await expectSameGrads(
      [
        [40, 6],
        [12, 40],
      ],
      (x, w) => weighted(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D, true, true)),
    );
  });
});

/** Central differences of `loss` at `x` for every coordinate, on wasm (float32). */
function finiteDifferences(
  loss: (x: tf.Tensor) => tf.Scalar,
  x: Float32Array,
  shape: number[],
  eps: number,
) {
  const out = new Float32Array(x.length);
  const at = (v: Float32Array) => tf.tidy(() => loss(tf.tensor(v, shape)).dataSync()[0]);
  for (let i = 0; i < x.length; i++) {
    const p = x.slice();
    const m = x.slice();
    p[i] += eps;
    m[i] -= eps;
    out[i] = (at(p) - at(m)) / (2 * eps);
  }
  return out;
}

function expectMatchesFiniteDifferences(
  loss: (x: tf.Tensor) => tf.Scalar,
  shape: number[],
  seed: number,
  eps: number,
) {
  expect(tf.getBackend()).toBe('wasm');
  const x = randomData(seed, shape);
  const grad = tf.tidy(() => tf.grad(loss)(tf.tensor(x, shape)).dataSync() as Float32Array);
  const fd = finiteDifferences(loss, x, shape, eps);
  expect(relError(grad, fd)).toBeLessThan(2e-3);
}

describe('wasm gradients match central finite differences', () => {
  const half = (y: tf.Tensor) => tf.mul(0.5, tf.sum(tf.square(y))) as tf.Scalar;
  const f = tf.tensor(randomData(20, [3, 3, 2, 3]), [3, 3, 2, 3]) as tf.Tensor4D;
  const x = tf.tensor(randomData(21, [1, 6, 5, 2]), [1, 6, 5, 2]) as tf.Tensor4D;
  const df = tf.tensor(randomData(22, [3, 3, 2, 2]), [3, 3, 2, 2]) as tf.Tensor4D;

  it('conv2d w.r.t. its input (stride 2, same)', () => {
    expectMatchesFiniteDifferences(
      (z) => half(tf.conv2d(z as tf.Tensor4D, f, 2, 'same')),
      [1, 6, 5, 2],
      1,
      1e-2,
    );
  });
  it('conv2d w.r.t. its filter (stride 1, valid)', () => {
    expectMatchesFiniteDifferences(
      (k) => half(tf.conv2d(x, k as tf.Tensor4D, 1, 'valid')),
      [3, 3, 2, 3],
      2,
      1e-2,
    );
  });
  it('depthwiseConv2d w.r.t. input and filter (multiplier 2, stride 2, same)', () => {
    expectMatchesFiniteDifferences(
      (z) => half(tf.depthwiseConv2d(z as tf.Tensor4D, df, 2, 'same')),
      [1, 6, 5, 2],
      3,
      1e-2,
    );
    expectMatchesFiniteDifferences(
      (k) => half(tf.depthwiseConv2d(x, k as tf.Tensor4D, 2, 'same')),
      [3, 3, 2, 2],
      4,
      1e-2,
    );
  });
  it('avgPool with same padding (windows overlapping the border)', () => {
    expectMatchesFiniteDifferences(
      (z) => half(tf.avgPool(z as tf.Tensor4D, 3, 2, 'same')),
      [1, 6, 5, 2],
      5,
      1e-2,
    );
  });
  it('maxPool with same padding', () => {
    expectMatchesFiniteDifferences(
      (z) => half(tf.maxPool(z as tf.Tensor4D, 3, 2, 'same')),
      [1, 6, 5, 2],
      6,
      1e-3,
    );
  });
});
