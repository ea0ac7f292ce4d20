/** Shared by the ONNX tests: a seeded sequence, one-node models, and array comparisons. */
import { expect } from 'vitest';
import type { OnnxAttribute, OnnxModel } from '../../src/engine/onnx/ir.js';

/** `n` values in [-0.5, 0.5) from a linear congruential sequence seeded by `seed`. */
export const random = (n: number, seed: number) => {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  });
};

/** A one-node model: input x [batch, 4, 9, 9] (NCHW) through `opType`, with its weights. */
export function oneNode(
  opType: string,
  attributes: Record<string, OnnxAttribute>,
  weights: Record<string, [number[], Float32Array]>,
): OnnxModel {
  const initializers = new Map(
    Object.entries(weights).map(([name, [dims, data]]) => [
      name,
      { name, dims, dtype: 'float32' as const, data },
    ]),
  );
  return {
    irVersion: 8,
    opsets: [{ domain: '', version: 13 }],
    producerName: 'test',
    metadata: {},
    graph: {
      name: 'g',
      nodes: [
        {
          opType,
          name: 'n',
          domain: '',
          inputs: ['x', ...Object.keys(weights)],
          outputs: ['y'],
          attributes,
        },
      ],
      initializers,
      inputs: [{ name: 'x', shape: [null, 4, 9, 9] }],
      outputs: [{ name: 'y', shape: [] }],
    },
  };
}

/** The largest |a[i] − b[i]| (the lengths must match). */
export const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** A case: name, operator, attributes, weights (name → [dims, values]), and optional input values. */
export type OperatorCase = [
  string,
  string,
  Record<string, OnnxAttribute>,
  Record<string, [number[], Float32Array]>,
  Float32Array?,
];

/** Window operators with strides, same padding, groups and pads, and batch norm: both test files' cases. */
export const SHARED_OPERATOR_CASES: OperatorCase[] = [
  [
    'conv stride 2, same padding',
    'Conv',
    { strides: [2, 2], auto_pad: 'SAME_UPPER' },
    { w: [[6, 4, 3, 3], random(216, 1)], b: [[6], random(6, 2)] },
  ],
  [
    'grouped conv (2 groups)',
    'Conv',
    { group: 2, pads: [1, 1, 1, 1] },
    { w: [[6, 2, 3, 3], random(108, 4)] },
  ],
  [
    'depthwise conv (multiplier 2)',
    'Conv',
    { group: 4, strides: [2, 1] },
    { w: [[8, 1, 3, 3], random(72, 5)] },
  ],
  [
    'max pool with pads (overlapping)',
    'MaxPool',
    { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    {},
  ],
  ['global average pool', 'GlobalAveragePool', {}, {}],
  [
    'batch normalisation',
    'BatchNormalization',
    { epsilon: 0.001 },
    {
      s: [[4], random(4, 8)],
      bb: [[4], random(4, 9)],
      m: [[4], random(4, 10)],
      v: [[4], Float32Array.from(random(4, 11), (v) => v + 1)],
    },
  ],
];
