/**
 * Hygiene of parry's wasm kernels: repeated calls leave tfjs's tensor, byte and data-buffer
 * counts and the wasm backend's own data ids exactly where they were, on success and on error.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runKernel } from './kernels-helpers.js';

function counts() {
  const m = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
  const backend = tf.backend() as unknown as { numDataIds(): number };
  return {
    tensors: m.numTensors,
    bytes: m.numBytes,
    buffers: m.numDataBuffers,
    dataIds: backend.numDataIds(),
  };
}

function expectNoLeak(run: () => void, times = 20) {
  run(); // first call may compile and cache (SIMD modules, XNNPACK operators)
  const before = counts();
  for (let i = 0; i < times; i++) run();
  expect(counts()).toEqual(before);
}

const rand = (shape: number[]) => tf.randomNormal(shape, 0, 1, 'float32', 5);

describe('no leaks in parry wasm kernels', () => {
  expect(tf.getBackend()).toBe('wasm');
  const x = rand([2, 9, 8, 6]);
  const f = rand([3, 3, 6, 5]);
  const dyValid = rand([2, 7, 6, 5]);
  const dyStride2 = rand([2, 5, 4, 5]);
  const df = rand([3, 3, 6, 2]);
  const ddy = rand([2, 5, 4, 12]);
  const a = rand([7, 5]);
  const b = rand([3, 7]);
  const wide = rand([40, 7]);
  const dyTall = rand([2, 13, 8, 5]);

  const cases: [string, () => tf.Tensor][] = [
    [
      'Conv2DBackpropInput (stride 1)',
      () =>
        runKernel(
          'Conv2DBackpropInput',
          { dy: dyValid, filter: f },
          { strides: 1, pad: 'valid', dataFormat: 'NHWC', inputShape: x.shape },
        ),
    ],
    [
      'Conv2DBackpropInput (stride 2, same)',
      () =>
        runKernel(
          'Conv2DBackpropInput',
          { dy: dyStride2, filter: f },
          { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: x.shape },
        ),
    ],
    [
      'Conv2DBackpropInput (negative crop)',
      () =>
        runKernel(
          'Conv2DBackpropInput',
          { dy: dyTall, filter: f },
          {
            strides: 1,
            pad: [
              [0, 0],
              [1, 5],
              [1, 1],
              [0, 0],
            ],
            dataFormat: 'NHWC',
            inputShape: x.shape,
          },
        ),
    ],
    [
      'Conv2DBackpropFilter (stride 2, same)',
      () =>
        runKernel(
          'Conv2DBackpropFilter',
          { x, dy: dyStride2 },
          { strides: 2, pad: 'same', dataFormat: 'NHWC', filterShape: f.shape },
        ),
    ],
    [
      'DepthwiseConv2dNativeBackpropInput',
      () =>
        runKernel(
          'DepthwiseConv2dNativeBackpropInput',
          { dy: ddy, filter: df },
          { strides: 2, pad: 'same', dilations: 1, inputShape: x.shape },
        ),
    ],
    [
      'DepthwiseConv2dNativeBackpropFilter',
      () =>
        runKernel(
          'DepthwiseConv2dNativeBackpropFilter',
          { x, dy: ddy },
          { strides: 2, pad: 'same', dilations: 1, filterShape: df.shape },
        ),
    ],
    [
      'MaxPoolGrad',
      () => tf.tidy(() => tf.grad((z) => tf.sum(tf.maxPool(z as tf.Tensor4D, 2, 2, 'same')))(x)),
    ],
    [
      'AvgPoolGrad',
      () => tf.tidy(() => tf.grad((z) => tf.sum(tf.avgPool(z as tf.Tensor4D, 3, 2, 'same')))(x)),
    ],
    [
      'BatchMatMul (transposeA)',
      () => runKernel('BatchMatMul', { a, b: a }, { transposeA: true, transposeB: false }),
    ],
    [
      'BatchMatMul (transposeB, flipped)',
      () => runKernel('BatchMatMul', { a: b, b: wide }, { transposeA: false, transposeB: true }),
    ],
    [
      'BatchMatMul (plain)',
      () => runKernel('BatchMatMul', { a: b, b: a }, { transposeA: false, transposeB: false }),
    ],
    ['Slice', () => tf.slice(x, [1, 2, 0, 1], [1, 3, 8, 4])],
    ['SplitV', () => tf.tidy(() => tf.addN(tf.split(x, [2, 4], 3).map((p) => tf.sum(p))))],
    ['Unpack', () => tf.tidy(() => tf.addN(tf.unstack(x, 1).map((p) => tf.sum(p))))],
    ['Equal (broadcast)', () => tf.tidy(() => tf.equal(x, tf.max(x, [1, 2], true)))],
    ['Greater', () => tf.greater(x, 0)],
    ['Sum (leading axes)', () => tf.sum(x, [0, 1, 2])],
    ['Select', () => tf.tidy(() => tf.where(tf.greater(x, 0), x, tf.neg(x)))],
    ['StridedSlice', () => tf.stridedSlice(x, [0, 1, 2, 1], [2, 4, 5, 3], [1, 1, 1, 1])],
    [
      'conv gradients through tf.grads',
      () =>
        tf.tidy(() =>
          tf.addN(
            tf
              .grads((u, v) => tf.sum(tf.conv2d(u as tf.Tensor4D, v as tf.Tensor4D, 1, 'same')))([
                x,
                f,
              ])
              .map((g) => tf.sum(g)),
          ),
        ),
    ],
  ];
  for (const [name, run] of cases) {
    it(name, () => expectNoLeak(() => run().dispose()));
  }

  it('failing calls free what they allocated', () => {
    const bad = () => {
      expect(() =>
        runKernel(
          'Conv2DBackpropFilter',
          { x, dy: dyValid },
          { strides: 2, pad: 'valid', dataFormat: 'NHWC', filterShape: f.shape },
        ),
      ).toThrow(/dy must have shape/);
      expect(() =>
        runKernel(
          'Conv2DBackpropInput',
          { dy: dyValid, filter: f },
          { strides: 1, pad: 'valid', dataFormat: 'NCHW', inputShape: x.shape },
        ),
      ).toThrow(/NHWC/);
    };
    expectNoLeak(bad, 5);
  });
});
