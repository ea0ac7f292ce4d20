/**
 * Slice for wasm. tfjs-backend-wasm's kernel starts with `backend.readSync(x)`, which copies the
 * whole input out of the heap, so every slice costs O(input) however small it is (15 ms for one
 * image out of a 128-image activation; the gradients of pad, concat and split slice large
 * tensors). This one reads the heap in place: O(output). Strings go to the original kernel.
 */
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel } from './originals.js';
import type { KernelArgs, WasmBackend } from './wasm-backend.js';

const NAME = 'Slice';

type Heap = Float32Array | Int32Array | Uint8Array;

/** Copies the box [begin, begin + size) of `src` (shape `shape`) into `dst`. */
function copyBox(src: Heap, shape: number[], begin: number[], size: number[], dst: Heap): void {
  const rank = shape.length;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let d = rank - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  // Axes after `inner` are taken whole, so each step copies one contiguous run along `inner`.
  let inner = rank - 1;
  while (inner > 0 && begin[inner] === 0 && size[inner] === shape[inner]) inner--;
  const runLength = size[inner] * strides[inner];
  const idx = new Array<number>(inner).fill(0);
  const count = size.slice(0, inner).reduce((p, n) => p * n, 1);
  for (let n = 0, out = 0; n < count; n++, out += runLength) {
    let from = begin[inner] * strides[inner];
    for (let d = 0; d < inner; d++) from += (begin[d] + idx[d]) * strides[d];
    dst.set(src.subarray(from, from + runLength), out);
    for (let d = inner - 1; d >= 0; d--) {
      if (++idx[d] < size[d]) break;
      idx[d] = 0;
    }
  }
}

export function slice(args: KernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const x = inputs.x as tf.TensorInfo;
  if (x.dtype === 'string' || x.dtype === 'complex64') {
    return originalKernel(NAME)(args) as tf.TensorInfo;
  }
  const a = attrs as unknown as tf.SliceAttrs;
  const [begin, size] = tf.slice_util.parseSliceParams(x, a.begin, a.size);
  tf.slice_util.assertParamsValid(x, begin, size);
  const be = backend as WasmBackend;
  const out = be.makeOutput(size, x.dtype);
  if (tf.util.sizeFromShape(size) === 0) return out;
  const src = be.typedArrayFromHeap(x);
  const dst = be.typedArrayFromHeap(out);
  if (x.shape.length === 0) dst.set(src);
  else copyBox(src, x.shape, begin, size, dst);
  return out;
}

export const sliceConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: slice as unknown as tf.KernelFunc,
};
