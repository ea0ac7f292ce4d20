/**
 * Conv2DBackpropFilter for wasm, which tfjs-backend-wasm 4.22 does not register at all (so conv
 * nets could not train there).
 *
 * dw[i, j, ci, co] = sum over b, y, x of x[b, y*sh + i - top, x*sw + j - left, ci] * dy[b, y, x, co]
 *
 * The input is zero-padded once (PadV2) so the sums never leave it, then the SIMD loops of
 * simd-conv.ts accumulate straight from the NHWC buffers. Caller (the engine) owns the output.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../errors.js';
import { convInfo, type Pad, padOrCrop, type Rounding } from './conv-geometry.js';
import { convFilterGrad } from './simd-conv.js';
import {
  f32,
  heapOffset,
  type KernelArgs,
  requireFloat32,
  requireNhwc,
  requireShape,
  type WasmBackend,
  withTemps,
} from './wasm-backend.js';

const NAME = 'Conv2DBackpropFilter';

export function conv2dBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  requireNhwc(NAME, a.dataFormat);
  requireFloat32(NAME, { x, dy });
  const be = backend as WasmBackend;
  const info = convInfo(
    x.shape,
    a.filterShape,
    a.strides,
    1,
    a.pad as Pad,
    a.dimRoundingMode as Rounding,
    false,
  );
  requireShape(NAME, 'dy', dy.shape, info.outShape);
  const { top, left } = info.padInfo;
  if (top < 0 || left < 0) {
    throw new ParryError('UNSUPPORTED', `${NAME}: negative padding (${top}, ${left})`);
  }
  // Rows and columns the sums reach: up to (out-1)*stride + filter - 1 in padded coordinates.
  const needH = (info.outHeight - 1) * info.strideHeight + info.filterHeight;
  const needW = (info.outWidth - 1) * info.strideWidth + info.filterWidth;
  const bottom = needH - top - info.inHeight;
  const right = needW - left - info.inWidth;

  return withTemps(be, (temps) => {
    const dw = temps.make(a.filterShape);
    // Only grow the input: rows past what the sums reach may stay, they are never read.
    const xp = padOrCrop(be, temps, x, [top, Math.max(0, bottom), left, Math.max(0, right)]);
    f32(be, dw).fill(0);
    convFilterGrad(
      be.wasm,
      () => ({ x: f32(be, xp), dy: f32(be, dy), dw: f32(be, dw) }),
      { x: heapOffset(be, xp), dy: heapOffset(be, dy), dw: heapOffset(be, dw) },
      {
        batch: info.batchSize,
        outH: info.outHeight,
        outW: info.outWidth,
        inH: xp.shape[1],
        inW: xp.shape[2],
        strideH: info.strideHeight,
        strideW: info.strideWidth,
        dilationH: 1,
        dilationW: 1,
        filterH: info.filterHeight,
        filterW: info.filterWidth,
      },
      info.inChannels,
      info.outChannels,
    );
    return dw;
  });
}

export const conv2dBackpropFilterConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilter as unknown as tf.KernelFunc,
};
