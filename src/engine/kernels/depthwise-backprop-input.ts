/**
 * DepthwiseConv2dNativeBackpropInput for wasm (tfjs-backend-wasm 4.22 has none).
 *
 * dx[b, X, Y, c] = sum over i, j, q of dy[b, (X+top-i*dh)/sh, (Y+left-j*dw)/sw, c*m + q] w[i, j, c, q]
 *
 * With dy spread out by zero insertion (stride 1 afterwards), this is a depthwise correlation of dy
 * (c*m channels, multiplier 1) with the spatially flipped filter and the same dilation, run by
 * wasm's XNNPACK DepthwiseConv2dNative; a channel multiplier m > 1 then sums each group of m
 * channels. Caller (the engine) owns the output.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { convInfo, insertZeros, type Pad, padOrCrop, type Rounding } from './conv-geometry.js';
import {
  f32,
  type KernelArgs,
  requireFloat32,
  requireShape,
  run,
  type WasmBackend,
  withShape,
  withTemps,
} from './wasm-backend.js';

const NAME = 'DepthwiseConv2dNativeBackpropInput';

/** w [kh, kw, c, m] flipped in both spatial axes, as a [kh, kw, c*m, 1] depthwise filter. */
function flipFilter(w: Float32Array, [kh, kw, c, m]: number[], out: Float32Array): void {
  const depth = c * m;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const src = (i * kw + j) * depth;
      out.set(w.subarray(src, src + depth), ((kh - 1 - i) * kw + (kw - 1 - j)) * depth);
    }
  }
}

export function depthwiseBackpropInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  requireFloat32(NAME, { dy, filter });
  const be = backend as WasmBackend;
  const info = convInfo(
    a.inputShape,
    filter.shape,
    a.strides,
    a.dilations ?? 1,
    a.pad as Pad,
    a.dimRoundingMode as Rounding,
    true,
  );
  requireShape(NAME, 'dy', dy.shape, info.outShape);
  const [kh, kw, channels, mult] = filter.shape;
  const { dilationHeight: dh, dilationWidth: dw } = info;
  // Padding of the zero-inserted dy so that output row X reads rows X + top - (kh-1)*dh ...
  const spreadH = (info.outHeight - 1) * info.strideHeight + 1;
  const spreadW = (info.outWidth - 1) * info.strideWidth + 1;
  const top = (kh - 1) * dh - info.padInfo.top;
  const bottom = info.inHeight - spreadH + info.padInfo.top;
  const left = (kw - 1) * dw - info.padInfo.left;
  const right = info.inWidth - spreadW + info.padInfo.left;

  return withTemps(be, (temps) => {
    const flipped = temps.make([kh, kw, channels * mult, 1]);
    const spread = insertZeros(be, temps, dy, info.strideHeight, info.strideWidth);
    const neg = (p: number) => Math.min(0, p);
    const pos = (p: number) => Math.max(0, p);
    const cropped = padOrCrop(be, temps, spread, [neg(top), neg(bottom), neg(left), neg(right)]);
    flipFilter(f32(be, filter), filter.shape, f32(be, flipped));
    const pad = [
      [0, 0],
      [pos(top), pos(bottom)],
      [pos(left), pos(right)],
      [0, 0],
    ];
    const conv = temps.add(
      run(
        'DepthwiseConv2dNative',
        be,
        { x: cropped, filter: flipped },
        { strides: 1, dilations: [dh, dw], pad },
      ),
    );
    if (mult === 1) return conv;
    const [b, h, w] = info.inShape;
    const grouped = withShape(conv, [b, h, w, channels, mult]);
    return temps.add(run('Sum', be, { x: grouped }, { axis: [4], keepDims: false }));
  });
}

export const depthwiseBackpropInputConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropInput as unknown as tf.KernelFunc,
};
