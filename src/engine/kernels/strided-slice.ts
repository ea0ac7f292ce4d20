/**
 * StridedSlice for wasm. When the request is a plain box (unit strides, or a slice of the first
 * axis), wasm's own kernel calls its Slice directly, which copies the whole input; this one uses
 * parry's O(output) Slice there and hands every other case to the original. Caller owns the output.
 */
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel } from './originals.js';
import { slice } from './slice.js';
import { type KernelArgs, withShape } from './wasm-backend.js';

const NAME = 'StridedSlice';

export function stridedSlice(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  const a = args.attrs as unknown as tf.StridedSliceAttrs;
  const info = tf.slice_util.sliceInfo(
    x.shape,
    a.begin,
    a.end,
    a.strides,
    a.beginMask,
    a.endMask,
    a.ellipsisMask,
    a.newAxisMask,
    a.shrinkAxisMask,
  );
  if (info.isIdentity || !(info.sliceDim0 || info.isSimpleSlice) || x.dtype === 'string') {
    return originalKernel(NAME)(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const size = tf.slice_util.computeOutShape(info.begin, info.end, info.strides);
  const sliced = slice({
    inputs: { x },
    backend: args.backend,
    attrs: { begin: info.begin, size },
  });
  return withShape(sliced, info.finalShape);
}

export const stridedSliceConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: stridedSlice as unknown as tf.KernelFunc,
};
