/**
 * The op kinds IBP and CROWN know (the neutral layer graph both the tfjs-layers walk, layers.ts,
 * and the ONNX importer, from-onnx.ts, produce), in parry's layout: images channels last.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../errors.js';

/** Monotone non-decreasing elementwise functions (tfjs-layers' definitions). */
export type ActivationFn =
  | 'relu'
  | 'leakyRelu'
  | 'relu6'
  | 'cappedRelu'
  | 'elu'
  | 'selu'
  | 'sigmoid'
  | 'hardSigmoid'
  | 'tanh'
  | 'softplus'
  | 'softsign';

/** Where an op came from, for error messages: "Conv2D layer 'conv1'", "Conv node '/conv/Conv'". */
export interface Source {
  className: string;
  name: string;
  /** 'layer' (tfjs-layers, the default) or 'node' (ONNX). */
  what?: 'layer' | 'node';
}

/** Zero padding of an NHWC convolution: [[0, 0], [top, bottom], [left, right], [0, 0]]. */
export type ExplicitPadding = [
  [number, number],
  [number, number],
  [number, number],
  [number, number],
];

export interface PoolGeometry {
  poolSize: [number, number];
  strides: [number, number];
  padding: 'same' | 'valid';
}

export type Op = { source: Source } & (
  | { kind: 'dense'; kernel: tf.Tensor2D; bias?: tf.Tensor1D }
  | {
      kind: 'conv2d';
      kernel: tf.Tensor4D;
      bias?: tf.Tensor1D;
      strides: [number, number];
      padding: 'same' | 'valid' | ExplicitPadding;
      dilations: [number, number];
    }
  /** y = x·scale + shift, both broadcast along the last axis. */
  | { kind: 'scale'; scale: tf.Tensor; shift: tf.Tensor }
  | { kind: 'activation'; fn: ActivationFn; alpha: number }
  | ({ kind: 'maxPool' } & PoolGeometry)
  | ({ kind: 'avgPool' } & PoolGeometry)
  | { kind: 'globalAvgPool' }
  | { kind: 'reshape' }
  /** Axes of one example permuted (the batch axis stays first): out axis j is in axis perm[j]. */
  | { kind: 'transpose'; perm: number[] }
  /** The sum of several branches that all start from this op's input (a residual block). */
  | { kind: 'residual'; branches: Network[] }
);

export interface Network {
  ops: Op[];
  /** `shapes[k]`: shape of one example entering op k; `shapes[ops.length]` is the output's. */
  shapes: number[][];
}

export const describe = (s: Source) => `${s.className} ${s.what ?? 'layer'} '${s.name}'`;

export function unsupported(fn: string, what: string): ParryError {
  return new ParryError('UNSUPPORTED', `${fn}: ${what}`);
}

/** Elements of one example of shape `s`. */
export const sizeOf = (s: number[]) => s.reduce((a, b) => a * b, 1);
