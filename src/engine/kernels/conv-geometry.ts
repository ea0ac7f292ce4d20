/**
 * Padding and layout steps shared by the convolution gradient kernels.
 */
import * as tf from '@tensorflow/tfjs-core';
import { f32, run, type Temps, type WasmBackend } from './wasm-backend.js';

/** A conv `pad` attribute: 'valid', 'same', a number, or explicit [[0,0],[t,b],[l,r],[0,0]]. */
export type Pad = Parameters<typeof tf.backend_util.computeConv2DInfo>[4];
export type Rounding = 'floor' | 'round' | 'ceil' | undefined;

/** tfjs's own conv geometry (output size, padding) for NHWC input and an HWIO filter. */
export function convInfo(
  inShape: number[],
  filterShape: number[],
  strides: number | [number, number],
  dilations: number | [number, number],
  pad: Pad,
  rounding: Rounding,
  depthwise: boolean,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    pad,
    rounding,
    depthwise,
    'channelsLast',
  );
}

/** Spatial padding as [top, bottom, left, right]; negative entries crop. */
export type Edges = [number, number, number, number];

/**
 * `x` (NHWC) with rows and columns added (zeros) or removed at its edges. Returns `x` itself
 * when nothing changes; otherwise a new intermediate owned by `temps`.
 */
export function padOrCrop(
  backend: WasmBackend,
  temps: Temps,
  x: tf.TensorInfo,
  [top, bottom, left, right]: Edges,
): tf.TensorInfo {
  let out = x;
  if (top < 0 || bottom < 0 || left < 0 || right < 0) {
    const [b, h, w, c] = x.shape;
    const begin = [0, Math.max(0, -top), Math.max(0, -left), 0];
    const size = [b, h - begin[1] - Math.max(0, -bottom), w - begin[2] - Math.max(0, -right), c];
    out = temps.add(run('Slice', backend, { x: out }, { begin, size }));
  }
  const [t, bt, l, r] = [top, bottom, left, right].map((p) => Math.max(0, p));
  if (t + bt + l + r > 0) {
    const paddings = [
      [0, 0],
      [t, bt],
      [l, r],
      [0, 0],
    ];
    out = temps.add(run('PadV2', backend, { x: out }, { paddings, constantValue: 0 }));
  }
  return out;
}

/**
 * Zero-insertion: dy [b, h, w, c] -> [b, (h-1)*sh+1, (w-1)*sw+1, c] with dy[y, x] at
 * (y*sh, x*sw), so a strided correlation's input gradient becomes a stride-1 correlation.
 */
export function insertZeros(
  backend: WasmBackend,
  temps: Temps,
  dy: tf.TensorInfo,
  sh: number,
  sw: number,
): tf.TensorInfo {
  if (sh === 1 && sw === 1) return dy;
  const [b, h, w, c] = dy.shape;
  const hd = (h - 1) * sh + 1;
  const wd = (w - 1) * sw + 1;
  const out = temps.make([b, hd, wd, c]);
  const src = f32(backend, dy);
  const dst = f32(backend, out);
  dst.fill(0);
  for (let n = 0; n < b; n++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const from = ((n * h + y) * w + x) * c;
        dst.set(src.subarray(from, from + c), ((n * hd + y * sh) * wd + x * sw) * c);
      }
    }
  }
  return out;
}
