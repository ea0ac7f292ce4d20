/**
 * parry's wasm convolution-gradient kernels against tfjs's cpu backend (an independent scalar
 * implementation), kernel by kernel, on seeded random inputs: strides 1-3, 'same' / 'valid' /
 * numeric / explicit padding, odd sizes, batch 1 and more, 1-64 channels, filters 1x1-5x5,
 * depthwise multipliers 1 and 2, dilation 2. Tolerance 1e-4 of the reference's largest magnitude.
 * Pooling, matmul and slicing kernels: kernels-ops.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { useSimdKernels } from '../../src/engine/kernels/index.js';
import { isParryError } from '../../src/errors.js';
import { kernelOnBoth, randomData, relError, runKernel, valuesOn } from './kernels-helpers.js';

const TOL = 1e-4;
type Pad = 'valid' | 'same' | number | [[0, 0], [number, number], [number, number], [0, 0]];
type Shape4 = [number, number, number, number];

/** Explicit padding [[0, 0], [top, bottom], [left, right], [0, 0]]. */
function explicit(top: number, bottom: number, left: number, right: number): Pad {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

type Strides = number | [number, number];
type ConvCase = [number, number, number, number, number, number, number, Strides, Pad];

// [batch, h, w, cin, cout, kh, kw, strides, pad]
const CONV: ConvCase[] = [
  [1, 5, 5, 1, 1, 1, 1, 1, 'valid'],
  [2, 7, 6, 3, 8, 3, 3, 1, 'same'],
  [2, 9, 9, 3, 8, 3, 3, 2, 'same'],
  [3, 8, 7, 8, 3, 5, 5, 2, 'valid'],
  [1, 11, 11, 8, 8, 3, 3, 2, 'valid'],
  [2, 6, 6, 3, 1, 5, 5, 1, 'same'],
  [2, 9, 8, 5, 13, 3, 1, [1, 2], 'same'],
  [2, 10, 9, 4, 6, 3, 2, [2, 1], explicit(1, 2, 0, 1)],
  [2, 7, 7, 3, 4, 3, 3, 2, 1],
  [2, 13, 13, 6, 10, 5, 5, 3, 'same'],
  [3, 12, 12, 32, 64, 3, 3, 1, 'valid'],
  [2, 10, 9, 1, 6, 3, 3, 2, 'same'],
  [1, 8, 8, 2, 5, 3, 3, 1, explicit(3, 0, 0, 2)],
  // Few input channels: input gradients through the narrow SIMD correlation.
  [2, 12, 11, 1, 32, 3, 3, 1, 'valid'],
  [2, 9, 9, 3, 16, 3, 3, 1, 'same'],
  [1, 10, 9, 1, 32, 3, 3, 2, 'same'],
  [1, 8, 8, 2, 24, 3, 3, 1, explicit(3, 0, 0, 2)],
  [2, 9, 9, 1, 8, 5, 5, 1, 'same'],
  [2, 8, 8, 2, 13, 3, 3, 1, 'valid'],
];

function convLabel([b, h, w, ci, co, kh, kw, s, pad]: (typeof CONV)[number]): string {
  return `x ${b}x${h}x${w}x${ci} -> ${co}, ${kh}x${kw}, strides ${s}, pad ${JSON.stringify(pad)}`;
}

function convOutShape(
  x: number[],
  f: number[],
  s: number | [number, number],
  pad: Pad,
  depthwise = false,
  dil = 1,
) {
  return tf.backend_util.computeConv2DInfo(
    x as Shape4,
    f as Shape4,
    s,
    dil,
    pad,
    undefined,
    depthwise,
  ).outShape;
}

describe('Conv2DBackpropInput and Conv2DBackpropFilter on wasm match cpu', () => {
  for (const c of CONV) {
    const [b, h, w, ci, co, kh, kw, strides, pad] = c;
    it(convLabel(c), async () => {
      const xShape = [b, h, w, ci];
      const fShape = [kh, kw, ci, co];
      const dyShape = convOutShape(xShape, fShape, strides, pad);
      const attrs = { strides, pad, dataFormat: 'NHWC' };
      const dx = await kernelOnBoth(
        'Conv2DBackpropInput',
        { dy: { shape: dyShape, seed: 1 }, filter: { shape: fShape, seed: 2 } },
        { ...attrs, inputShape: xShape },
      );
      expect(relError(dx.wasm, dx.cpu)).toBeLessThan(TOL);
      const dw = await kernelOnBoth(
        'Conv2DBackpropFilter',
        { x: { shape: xShape, seed: 3 }, dy: { shape: dyShape, seed: 4 } },
        { ...attrs, filterShape: fShape },
      );
      expect(relError(dw.wasm, dw.cpu)).toBeLessThan(TOL);
    });
  }
});

describe('the conv gradients without wasm SIMD (JS loops, XNNPACK only)', () => {
  afterEach(() => useSimdKernels(true));
  for (const c of [CONV[3], CONV[6], CONV[11], CONV[15], CONV[16]]) {
    const [b, h, w, ci, co, kh, kw, strides, pad] = c;
    it(convLabel(c), async () => {
      useSimdKernels(false);
      const xShape = [b, h, w, ci];
      const fShape = [kh, kw, ci, co];
      const dyShape = convOutShape(xShape, fShape, strides, pad);
      const dw = await kernelOnBoth(
        'Conv2DBackpropFilter',
        { x: { shape: xShape, seed: 3 }, dy: { shape: dyShape, seed: 4 } },
        { strides, pad, dataFormat: 'NHWC', filterShape: fShape },
      );
      expect(relError(dw.wasm, dw.cpu)).toBeLessThan(TOL);
      // Few-channel input gradients take XNNPACK instead of the narrow SIMD correlation.
      const dx = await kernelOnBoth(
        'Conv2DBackpropInput',
        { dy: { shape: dyShape, seed: 1 }, filter: { shape: fShape, seed: 2 } },
        { strides, pad, dataFormat: 'NHWC', inputShape: xShape },
      );
      expect(relError(dx.wasm, dx.cpu)).toBeLessThan(TOL);
      const dShape = [kh, kw, ci, 2];
      const ddw = await kernelOnBoth(
        'DepthwiseConv2dNativeBackpropFilter',
        {
          x: { shape: xShape, seed: 5 },
          dy: { shape: convOutShape(xShape, dShape, strides, pad, true), seed: 6 },
        },
        { strides, pad, dilations: 1, filterShape: dShape },
      );
      expect(relError(ddw.wasm, ddw.cpu)).toBeLessThan(TOL);
    });
  }
});

// [batch, h, w, channels, multiplier, k, strides, pad, dilation]
const DEPTHWISE: [number, number, number, number, number, number, number, Pad, number][] = [
  [1, 5, 5, 1, 1, 1, 1, 'valid', 1],
  [2, 7, 6, 3, 1, 3, 1, 'same', 1],
  [2, 9, 9, 3, 2, 3, 2, 'same', 1],
  [3, 8, 7, 8, 2, 5, 2, 'valid', 1],
  [2, 12, 11, 21, 1, 3, 1, 'valid', 1],
  [1, 10, 9, 6, 2, 3, 1, explicit(2, 0, 1, 1), 1],
  [2, 12, 12, 16, 1, 3, 1, 'same', 1],
  [2, 10, 10, 8, 1, 3, 1, 'same', 2],
  [2, 9, 9, 3, 2, 3, 1, 'valid', 2],
];

/** w [k, k, c, m] spread to dilation 1: [(k-1)d+1, ..] with zeros between taps. */
function dilateFilter(
  w: Float32Array,
  [k, , c, m]: number[],
  d: number,
): { data: Float32Array; shape: number[] } {
  const kd = (k - 1) * d + 1;
  const out = new Float32Array(kd * kd * c * m);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      out.set(
        w.subarray((i * k + j) * c * m, (i * k + j + 1) * c * m),
        (i * d * kd + j * d) * c * m,
      );
    }
  }
  return { data: out, shape: [kd, kd, c, m] };
}

describe('DepthwiseConv2dNativeBackpropInput and -Filter on wasm match cpu', () => {
  for (const [b, h, w, c, m, k, s, pad, d] of DEPTHWISE) {
    it(`x ${b}x${h}x${w}x${c}, multiplier ${m}, ${k}x${k}, stride ${s}, pad ${JSON.stringify(pad)}, dilation ${d}`, async () => {
      const xShape = [b, h, w, c];
      const fShape = [k, k, c, m];
      const dyShape = convOutShape(xShape, fShape, s, pad, true, d);
      const dyData = randomData(1, dyShape);
      const fData = randomData(2, fShape);
      const xData = randomData(3, xShape);
      const wasmAttrs = { strides: s, pad, dilations: d };
      // cpu's depthwise gradients ignore dilation: give it the equivalent zero-spread filter.
      const spread = dilateFilter(fData, fShape, d);
      const dx = {
        wasm: await valuesOn('wasm', () =>
          runKernel(
            'DepthwiseConv2dNativeBackpropInput',
            { dy: tf.tensor(dyData, dyShape), filter: tf.tensor(fData, fShape) },
            { ...wasmAttrs, inputShape: xShape },
          ),
        ),
        cpu: await valuesOn('cpu', () =>
          runKernel(
            'DepthwiseConv2dNativeBackpropInput',
            { dy: tf.tensor(dyData, dyShape), filter: tf.tensor(spread.data, spread.shape) },
            { strides: s, pad, dilations: 1, inputShape: xShape },
          ),
        ),
      };
      expect(relError(dx.wasm, dx.cpu)).toBeLessThan(TOL);
      const dw = {
        wasm: await valuesOn('wasm', () =>
          runKernel(
            'DepthwiseConv2dNativeBackpropFilter',
            { x: tf.tensor(xData, xShape), dy: tf.tensor(dyData, dyShape) },
            { ...wasmAttrs, filterShape: fShape },
          ),
        ),
        cpu: await valuesOn('cpu', () => {
          const full = runKernel(
            'DepthwiseConv2dNativeBackpropFilter',
            { x: tf.tensor(xData, xShape), dy: tf.tensor(dyData, dyShape) },
            { strides: s, pad, dilations: 1, filterShape: spread.shape },
          );
          return tf.stridedSlice(full, [0, 0, 0, 0], spread.shape, [d, d, 1, 1]);
        }),
      };
      expect(relError(dw.wasm, dw.cpu)).toBeLessThan(TOL);
    });
  }
});

describe('NCHW is refused with a ParryError naming the kernel', () => {
  for (const [name, inputs, attrs] of [
    [
      'Conv2DBackpropInput',
      () => ({ dy: tf.zeros([1, 3, 2, 2]), filter: tf.zeros([1, 1, 3, 3]) }),
      { inputShape: [1, 3, 2, 2] },
    ],
    [
      'Conv2DBackpropFilter',
      () => ({ x: tf.zeros([1, 3, 2, 2]), dy: tf.zeros([1, 3, 2, 2]) }),
      { filterShape: [1, 1, 3, 3] },
    ],
  ] as const) {
    it(name, () => {
      const ins = inputs();
      let error: unknown;
      try {
        runKernel(name, ins, { ...attrs, strides: 1, pad: 'valid', dataFormat: 'NCHW' });
      } catch (e) {
        error = e;
      }
      tf.dispose(Object.values(ins));
      expect(isParryError(error) && error.code === 'UNSUPPORTED').toBe(true);
      expect((error as Error).message).toContain(name);
    });
  }
});
