/**
 * SplitV for wasm (the gradient of concat), on parry's O(output) Slice: wasm's own kernel calls
 * its Slice directly, which copies the whole input once per output (636 ms for the gradient of
 * concatenating two 128x24x24x64 activations). Caller (the engine) owns the outputs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { slice } from './slice.js';
import type { KernelArgs } from './wasm-backend.js';

export function splitV({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const x = inputs.x as tf.TensorInfo;
  const { numOrSizeSplits, axis } = attrs as unknown as tf.SplitVAttrs;
  const ax = tf.util.parseAxisParam(axis, x.shape)[0];
  const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[ax] = s;
    const out = slice({ inputs: { x }, backend, attrs: { begin: [...begin], size } });
    begin[ax] += s;
    return out;
  });
}

export const splitVConfig: tf.KernelConfig = {
  kernelName: 'SplitV',
  backendName: 'wasm',
  kernelFunc: splitV as unknown as tf.KernelFunc,
};
