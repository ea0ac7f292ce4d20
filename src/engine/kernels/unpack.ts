/**
 * Unpack for wasm (the gradient of stack), on parry's O(output) Slice: wasm's own kernel calls
 * its Slice directly, which copies the whole input once per output. Caller owns the outputs.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { slice } from './slice.js';
import { type KernelArgs, withShape } from './wasm-backend.js';

export function unpack({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo[] {
  const value = inputs.value as tf.TensorInfo;
  const rank = value.shape.length;
  let axis = (attrs as unknown as tf.UnpackAttrs).axis;
  if (axis < 0) axis += rank;
  const outShape = value.shape.filter((_, i) => i !== axis);
  const size = [...value.shape];
  size[axis] = 1;
  return Array.from({ length: value.shape[axis] }, (_, i) => {
    const begin = new Array<number>(rank).fill(0);
    begin[axis] = i;
    return withShape(slice({ inputs: { x: value }, backend, attrs: { begin, size } }), outShape);
  });
}

export const unpackConfig: tf.KernelConfig = {
  kernelName: 'Unpack',
  backendName: 'wasm',
  kernelFunc: unpack as unknown as tf.KernelFunc,
};
