/**
 * MaxPoolGrad for wasm. tfjs-backend-wasm's kernel took 180-210 ms for cnn-small's pool
 * (128x24x24x64, 2x2 stride 2) against 4-8 ms for the forward pool; this one runs the
 * branch-free SIMD loops of simd-pool.ts.
 *
 * dx[argmax of window] += dy[window], the argmax being the first position holding the window's
 * maximum of x (-inf and NaN never win), as in tfjs's cpu kernel. Caller (the engine) owns the
 * output.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type PoolGeometry, poolGrad } from './simd-pool.js';
import {
  f32,
  heapOffset,
  type KernelArgs,
  requireFloat32,
  type WasmBackend,
} from './wasm-backend.js';

const NAME = 'MaxPoolGrad';

/** tfjs's pooling geometry in the form simd-pool.ts takes. */
export function poolGeometry(
  shape: number[],
  filterSize: number | [number, number],
  strides: number | [number, number],
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding,
  rounding?: 'floor' | 'round' | 'ceil',
): PoolGeometry {
  const info = tf.backend_util.computePool2DInfo(
    shape as [number, number, number, number],
    filterSize,
    strides,
    1,
    pad,
    rounding,
  );
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    channels: info.inChannels,
    filterH: info.filterHeight,
    filterW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

export function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const a = attrs as unknown as tf.MaxPoolGradAttrs;
  requireFloat32(NAME, { dy, input });
  const g = poolGeometry(input.shape, a.filterSize, a.strides, a.pad, a.dimRoundingMode);
  const be = backend as WasmBackend;
  const dx = be.makeOutput(input.shape, 'float32');
  f32(be, dx).fill(0);
  poolGrad(
    be.wasm,
    () => ({ x: f32(be, input), dy: f32(be, dy), dx: f32(be, dx) }),
    { x: heapOffset(be, input), dy: heapOffset(be, dy), dx: heapOffset(be, dx) },
    g,
  );
  return dx;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
