/**
 * DepthwiseConv2dNativeBackpropFilter for wasm (tfjs-backend-wasm 4.22 has none).
 *
 * dw[i, j, c, q] = sum over b, y, x of x[b, y*sh + i*dh - top, x*sw + j*dw - left, c] dy[b, y, x, c*m + q]
 *
 * The input is zero-padded once; for a channel multiplier m > 1, dy is transposed so that each q
 * holds a contiguous run of channels. The SIMD loops of simd-depthwise.ts then multiply-accumulate
 * channel vectors in place. Caller (the engine) owns the output.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../errors.js';
import { convInfo, type Pad, padOrCrop, type Rounding } from './conv-geometry.js';
import { depthwiseFilterGrad } from './simd-depthwise.js';
import {
  f32,
  heapOffset,
  type KernelArgs,
  requireFloat32,
  requireShape,
  run,
  type WasmBackend,
  withShape,
  withTemps,
} from './wasm-backend.js';

const NAME = 'DepthwiseConv2dNativeBackpropFilter';

export function depthwiseBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  requireFloat32(NAME, { x, dy });
  const be = backend as WasmBackend;
  const info = convInfo(
    x.shape,
    a.filterShape,
    a.strides,
    a.dilations ?? 1,
    a.pad as Pad,
    a.dimRoundingMode as Rounding,
    true,
  );
  requireShape(NAME, 'dy', dy.shape, info.outShape);
  const [kh, kw, channels, mult] = a.filterShape;
  const { top, left } = info.padInfo;
  if (top < 0 || left < 0) {
    throw new ParryError('UNSUPPORTED', `${NAME}: negative padding (${top}, ${left})`);
  }
  const needH = (info.outHeight - 1) * info.strideHeight + (kh - 1) * info.dilationHeight + 1;
  const needW = (info.outWidth - 1) * info.strideWidth + (kw - 1) * info.dilationWidth + 1;
  const bottom = Math.max(0, needH - top - info.inHeight);
  const right = Math.max(0, needW - left - info.inWidth);
  const [b, ho, wo] = info.outShape;

  return withTemps(be, (temps) => {
    // Accumulated as [kh, kw, m, c]; that is the filter's own layout when m = 1.
    const dwT = temps.make([kh, kw, mult, channels]);
    const xp = padOrCrop(be, temps, x, [top, bottom, left, right]);
    const dyT =
      mult === 1
        ? dy
        : temps.add(
            run(
              'Transpose',
              be,
              { x: withShape(dy, [b, ho, wo, channels, mult]) },
              { perm: [0, 1, 2, 4, 3] },
            ),
          );
    f32(be, dwT).fill(0);
    depthwiseFilterGrad(
      be.wasm,
      () => ({ x: f32(be, xp), dy: f32(be, dyT), dw: f32(be, dwT) }),
      { x: heapOffset(be, xp), dy: heapOffset(be, dyT), dw: heapOffset(be, dwT) },
      {
        batch: b,
        outH: ho,
        outW: wo,
        inH: xp.shape[1],
        inW: xp.shape[2],
        strideH: info.strideHeight,
        strideW: info.strideWidth,
        dilationH: info.dilationHeight,
        dilationW: info.dilationWidth,
        filterH: kh,
        filterW: kw,
      },
      channels,
      mult,
    );
    if (mult === 1) return withShape(dwT, a.filterShape);
    return temps.add(run('Transpose', be, { x: dwT }, { perm: [0, 1, 3, 2] }));
  });
}

export const depthwiseBackpropFilterConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: depthwiseBackpropFilter as unknown as tf.KernelFunc,
};
