/**
 * parry's other wasm kernels (pooling gradients, transposed matmuls, slicing) against tfjs's cpu
 * backend on seeded random inputs. Tolerance 1e-4 of the reference's largest magnitude.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { useSimdKernels } from '../../src/engine/kernels/index.js';
import { kernelOnBoth, randomData, relError, runKernel, valuesOn } from './kernels-helpers.js';

const TOL = 1e-4;
type Shape4 = [number, number, number, number];

// [batch, h, w, c, filter, strides, pad]
const POOL: [
  number,
  number,
  number,
  number,
  number | [number, number],
  number | [number, number],
  'valid' | 'same',
][] = [
  [2, 24, 24, 8, 2, 2, 'valid'],
  [1, 7, 7, 3, 3, 2, 'same'],
  [2, 6, 5, 1, 3, 1, 'same'],
  [2, 9, 9, 5, [3, 2], [2, 1], 'valid'],
  [3, 8, 8, 64, 2, 2, 'valid'],
];

describe('MaxPoolGrad and AvgPoolGrad on wasm match cpu', () => {
  for (const [b, h, w, c, f, s, pad] of POOL) {
    it(`x ${b}x${h}x${w}x${c}, filter ${f}, strides ${s}, ${pad}`, async () => {
      const xShape = [b, h, w, c];
      const xData = randomData(7, xShape);
      const out = tf.backend_util.computePool2DInfo(xShape as Shape4, f, s, 1, pad).outShape;
      const dyData = randomData(8, out);
      const maxGrad = () =>
        tf.tidy(() => {
          const x = tf.tensor(xData, xShape);
          const y = tf.maxPool(x as tf.Tensor4D, f, s, pad);
          return runKernel(
            'MaxPoolGrad',
            { dy: tf.tensor(dyData, out), input: x, output: y },
            { filterSize: f, strides: s, pad },
          );
        });
      const mg = { wasm: await valuesOn('wasm', maxGrad), cpu: await valuesOn('cpu', maxGrad) };
      expect(relError(mg.wasm, mg.cpu)).toBeLessThan(TOL);
      // tfjs's cpu AvgPoolGrad divides by the full window even where 'same' windows hang over
      // the padding (not the derivative of its own forward op); see kernels-grad.test.ts.
      if (pad === 'valid') {
        const ag = await kernelOnBoth(
          'AvgPoolGrad',
          { dy: { shape: out, seed: 8 }, input: { shape: xShape, seed: 7 } },
          { filterSize: f, strides: s, pad },
        );
        expect(relError(ag.wasm, ag.cpu)).toBeLessThan(TOL);
      }
    });
  }
});

describe('the pooling-gradient loops without wasm SIMD (JS fallback)', () => {
  afterEach(() => useSimdKernels(true));
  it('x 2x7x7x5, 3x3, stride 2, same', async () => {
    const xShape: [number, number, number, number] = [2, 7, 7, 5];
    const xData = randomData(7, xShape);
    const dyData = randomData(8, [2, 4, 4, 5]);
    const grad = (pool: 'max' | 'avg') => () =>
      tf.tidy(() => {
        const dy = tf.tensor(dyData, [2, 4, 4, 5]);
        const x = tf.tensor(xData, xShape) as tf.Tensor4D;
        const f = (z: tf.Tensor) =>
          pool === 'max'
            ? tf.maxPool(z as tf.Tensor4D, 3, 2, 'same')
            : tf.avgPool(z as tf.Tensor4D, 3, 2, 'same');
        return tf.grad(f)(x, dy);
      });
    const simd = {
      max: await valuesOn('wasm', grad('max')),
      avg: await valuesOn('wasm', grad('avg')),
    };
    useSimdKernels(false);
    expect(relError(await valuesOn('wasm', grad('max')), simd.max)).toBeLessThan(TOL);
    expect(relError(await valuesOn('wasm', grad('avg')), simd.avg)).toBeLessThan(TOL);
    expect(relError(simd.max, await valuesOn('cpu', grad('max')))).toBeLessThan(TOL);
  });
});

describe('BatchMatMul on wasm matches cpu', () => {
  // [aShape, bShape, transposeA, transposeB]: both orientations of the fast path, and the plain
  // and batched products left to wasm's own kernel.
  const cases: [number[], number[], boolean, boolean][] = [
    [[5, 7], [7, 3], false, false],
    [[7, 5], [7, 3], true, false],
    [[5, 7], [3, 7], false, true],
    [[7, 5], [3, 7], true, true],
    [[3, 4], [50, 4], false, true], // flipped orientation
    [[4, 50], [4, 3], true, false], // direct orientation
    [[1, 9], [1, 4], true, false],
    [[6, 1], [17, 1], false, true],
    [[1, 33, 65], [1, 2, 65], false, true],
    [[2, 6, 5], [2, 6, 4], true, false],
    [[65, 3], [65, 129], true, false],
  ];
  for (const [aShape, bShape, transposeA, transposeB] of cases) {
    it(`[${aShape}] x [${bShape}], transposeA ${transposeA}, transposeB ${transposeB}`, async () => {
      const r = await kernelOnBoth(
        'BatchMatMul',
        { a: { shape: aShape, seed: 1 }, b: { shape: bShape, seed: 2 } },
        { transposeA, transposeB },
      );
      expect(relError(r.wasm, r.cpu)).toBeLessThan(TOL);
    });
  }
});

describe('Slice on wasm matches cpu', () => {
  const cases: [number[], number[], number[]][] = [
    [[10], [3], [4]],
    [
      [4, 6],
      [1, 2],
      [2, 3],
    ],
    [
      [4, 6],
      [1, 0],
      [2, 6],
    ],
    [
      [3, 5, 7],
      [1, 1, 2],
      [2, -1, 3],
    ],
    [
      [2, 5, 5, 3],
      [0, 1, 1, 0],
      [2, 3, 3, 3],
    ],
    [
      [2, 5, 5, 3],
      [1, 0, 0, 1],
      [1, 5, 5, 2],
    ],
    [
      [2, 3, 4, 5, 6],
      [1, 1, 0, 2, 3],
      [1, 2, 4, 2, 3],
    ],
    [
      [3, 4],
      [0, 0],
      [0, 4],
    ],
  ];
  for (const [shape, begin, size] of cases) {
    for (const dtype of ['float32', 'int32', 'bool'] as const) {
      it(`${dtype} [${shape}] from [${begin}] size [${size}]`, async () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = Array.from({ length: n }, (_, i) =>
          dtype === 'bool' ? i % 3 === 0 : i * 1.5,
        );
        const f = () => {
          const x = tf.tensor(data as number[], shape, dtype);
          const out = tf.slice(x, begin, size);
          x.dispose();
          return out;
        };
        expect(Array.from(await valuesOn('wasm', f))).toEqual(Array.from(await valuesOn('cpu', f)));
      });
    }
  }

  const ops: [string, (x: tf.Tensor) => tf.Tensor][] = [
    [
      'split',
      (x) =>
        tf.concat(
          tf.split(x, [1, 3, 2], 2).map((p, i) => tf.mul(p, i + 1)),
          2,
        ),
    ],
    [
      'unstack',
      (x) =>
        tf.stack(
          tf.unstack(x, 1).map((p, i) => tf.add(p, i)),
          0,
        ),
    ],
    ['stridedSlice, first axis', (x) => tf.stridedSlice(x, [1], [3], [1])],
    ['stridedSlice, box', (x) => tf.stridedSlice(x, [0, 1, 2, 1], [2, 4, 5, 3], [1, 1, 1, 1])],
    [
      'stridedSlice, strided (original kernel)',
      (x) => tf.stridedSlice(x, [0, 0, 1, 0], [3, 5, 6, 3], [2, 2, 2, 1]),
    ],
    [
      'stridedSlice, shrink axis',
      (x) => tf.stridedSlice(x, [1, 0, 0, 0], [2, 5, 6, 3], [1, 1, 1, 1], 0, 0, 0, 0, 1),
    ],
    [
      'gradient of concat',
      (x) => tf.grad((z) => tf.sum(tf.mul(tf.concat([z, tf.square(z)], 3), tf.range(0, 6))))(x),
    ],
  ];
  for (const [label, op] of ops) {
    it(`${label} matches cpu`, async () => {
      const data = randomData(9, [3, 5, 6, 3]);
      const f = () => tf.tidy(() => op(tf.tensor(data, [3, 5, 6, 3])));
      expect(relError(await valuesOn('wasm', f), await valuesOn('cpu', f))).toBeLessThan(TOL);
    });
  }

  it('hands strings to the original kernel', () => {
    const s = tf.tensor(['a', 'b', 'c', 'd'], [2, 2]);
    expect(tf.slice(s, [1, 0], [1, 2]).arraySync()).toEqual([['c', 'd']]);
    s.dispose();
  });
});

describe('compare kernels on wasm match cpu', () => {
  afterEach(() => useSimdKernels(true));
  const shapes: [number[], number[]][] = [
    [
      [4, 5, 6],
      [4, 5, 6],
    ],
    [
      [4, 5, 6],
      [4, 5, 1],
    ],
    [
      [4, 5, 6],
      [1, 1, 6],
    ],
    [
      [2, 3, 4, 5],
      [2, 1, 1, 5],
    ],
    [
      [3, 1],
      [1, 4],
    ],
    [[7], []],
    [[], []],
    [
      [3, 40, 33],
      [3, 1, 33],
    ],
    [
      [2, 50],
      [2, 1],
    ],
    [[37], []],
    [
      [1, 45],
      [6, 1],
    ],
  ];
  const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
    ['equal', tf.equal],
    ['notEqual', tf.notEqual],
    ['greater', tf.greater],
    ['greaterEqual', tf.greaterEqual],
    ['less', tf.less],
    ['lessEqual', tf.lessEqual],
  ];
  for (const [as, bs] of shapes) {
    for (const [dtype, simd] of [
      ['float32', true],
      ['int32', true],
      ['float32', false],
    ] as const) {
      it(`[${as}] vs [${bs}], ${dtype}${simd ? '' : ', JS fallback'}`, async () => {
        useSimdKernels(simd);
        // Few distinct values, so ties are common; NaN in float32.
        const values = (seed: number, shape: number[]) =>
          Array.from(randomData(seed, shape), (v, i) =>
            dtype === 'float32' && i % 7 === 3 ? Number.NaN : Math.round(v),
          );
        const a = values(1, as);
        const b = values(2, bs);
        for (const [name, op] of ops) {
          const f = () =>
            tf.tidy(() => tf.cast(op(tf.tensor(a, as, dtype), tf.tensor(b, bs, dtype)), 'int32'));
          expect(Array.from(await valuesOn('wasm', f)), name).toEqual(
            Array.from(await valuesOn('cpu', f)),
          );
        }
      });
    }
  }
});

describe('Sum on wasm matches cpu', () => {
  afterEach(() => useSimdKernels(true));
  const cases: [number[], number | number[], boolean][] = [
    [[3, 4, 5, 6], [0, 1, 2], false],
    [[3, 4, 5, 6], [0, 1, 2], true],
    [[3, 4, 5, 6], [1, 2], false],
    [[3, 4, 5, 6], 0, true],
    [[3, 4, 5, 6], [2, 0, 1], false],
    [[3, 4, 5, 6], [0, 2], false],
    [[3, 4, 5, 6], -1, false],
    [[3, 4, 5, 2], [0, 1], false],
    [[6, 8], 0, false],
    [[2, 700, 37], 1, false],
  ];
  for (const [shape, axis, keepDims] of cases) {
    it(`[${shape}] over ${JSON.stringify(axis)}${keepDims ? ', keepDims' : ''}`, async () => {
      if (shape[0] === 2) useSimdKernels(false); // one case through the JS loops
      const data = randomData(3, shape);
      const f = () => tf.tidy(() => tf.sum(tf.tensor(data, shape), axis, keepDims));
      const wasm = await valuesOn('wasm', f);
      expect(relError(wasm, await valuesOn('cpu', f))).toBeLessThan(TOL);
      const shapeOn = async (b: string) => {
        await tf.setBackend(b);
        const t = f();
        const s = t.shape;
        t.dispose();
        await tf.setBackend('wasm');
        return s;
      };
      expect(await shapeOn('wasm')).toEqual(await shapeOn('cpu'));
    });
  }
});

describe('Select on wasm matches cpu', () => {
  afterEach(() => useSimdKernels(true));
  it('passes values (NaN, infinities, int32) through exactly, with and without SIMD', async () => {
    const shape = [4, 5, 6];
    const t = Array.from(randomData(4, shape), (v, i) =>
      i % 11 === 0 ? Number.NaN : i % 13 === 0 ? -Infinity : v,
    );
    const e = Array.from(randomData(5, shape));
    const c = Array.from(randomData(6, shape), (v) => v > 0);
    for (const [dtype, simd] of [
      ['float32', true],
      ['int32', true],
      ['float32', false],
    ] as const) {
      useSimdKernels(simd);
      const f = () =>
        tf.tidy(() =>
          tf.where(
            tf.tensor(c, shape, 'bool'),
            tf.tensor(t, shape, dtype),
            tf.tensor(e, shape, dtype),
          ),
        );
      expect(Array.from(await valuesOn('wasm', f))).toEqual(Array.from(await valuesOn('cpu', f)));
    }
  });

  it('selects whole rows with a rank-1 condition', async () => {
    const f = () =>
      tf.tidy(() => {
        const cond = tf.tensor([true, false, true], [3], 'bool');
        const out = tf.engine().runKernel('Select', {
          condition: cond,
          t: tf.ones([3, 4]),
          e: tf.zeros([3, 4]),
        }) as tf.Tensor;
        return out;
      });
    expect(Array.from(await valuesOn('wasm', f))).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('gradient of max over spatial axes (Equal with broadcasting)', async () => {
    const shape = [2, 5, 4, 3];
    const data = randomData(7, shape);
    const f = () =>
      tf.tidy(() =>
        tf.grad((z) => tf.sum(tf.mul(tf.max(z, [1, 2]), tf.range(1, 4))))(tf.tensor(data, shape)),
      );
    expect(relError(await valuesOn('wasm', f), await valuesOn('cpu', f))).toBeLessThan(TOL);
  });
});
