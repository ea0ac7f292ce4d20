/**
 * Conv2DBackpropInput for wasm as one forward correlation. tfjs-backend-wasm's own kernel is a
 * scalar loop, ~11x slower than the forward conv on the same shapes (1.2-2 s for cnn-small's conv2
 * at batch 128); this runs within ~10% of the forward conv.
 *
 * dx[b, X, Y, ci] = sum over i, j, co of dy[b, (X+top-i)/sh, (Y+left-j)/sw, co] w[i, j, ci, co]
 * (terms with a fractional or out-of-range index vanish). Split X + top = q*sh + r: phase r only
 * meets the filter rows i = m*sh + r, so each phase is a stride-1 correlation of dy with a flipped
 * sub-filter of ceil(kh/sh) rows. All sh*sw phases run as the output channels of one conv, whose
 * result interleaves into dx ("sub-pixel" decomposition). Stride 1 is the plain flipped-filter
 * correlation, with no interleave and no wasted products; stride s wastes only the zero taps that
 * pad kh up to a multiple of s. The correlation runs on XNNPACK's Conv2D, or, when it has at most
 * 4 output channels (the input gradient of a first layer on grayscale or RGB images), on the narrow
 * SIMD kernel of simd-narrow-conv.ts. Caller (the engine) owns the output.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { convInfo, type Pad, padOrCrop, type Rounding } from './conv-geometry.js';
import { narrowConv } from './simd-narrow-conv.js';
import {
  f32,
  heapOffset,
  type KernelArgs,
  requireFloat32,
  requireNhwc,
  requireShape,
  run,
  type Temps,
  type WasmBackend,
  withTemps,
} from './wasm-backend.js';

const NAME = 'Conv2DBackpropInput';

/** One spatial axis of the phase decomposition. */
interface Phases {
  stride: number;
  /** taps per phase: ceil(k / stride) */
  taps: number;
  /** padding of dy before / after (negative: crop) */
  before: number;
  after: number;
  /** phase-major rows of the conv output: q0 .. q0 + count - 1 */
  count: number;
  /** row of the interleaved output where dx row 0 lands */
  offset: number;
}

function phases(inSize: number, outSize: number, k: number, stride: number, pad: number): Phases {
  const taps = Math.ceil(k / stride);
  const q0 = Math.floor(pad / stride);
  const q1 = Math.floor((inSize - 1 + pad) / stride);
  const count = q1 - q0 + 1;
  return {
    stride,
    taps,
    before: taps - 1 - q0,
    after: count - outSize + q0,
    count,
    offset: pad - q0 * stride,
  };
}

/** Where tap (mh, mw), dy channel co, output channel ch of the combined filter is stored. */
type Layout = (mh: number, mw: number, co: number, ch: number) => number;

/**
 * The combined filter: output channel (rh*sw + rw)*cin + ci of tap (mh, mw) on dy channel co is
 * w[(tapsH-1-mh)*sh + rh, (tapsW-1-mw)*sw + rw, ci, co], or 0 past the filter's edge.
 */
function phaseFilter(
  w: Float32Array,
  wShape: number[],
  ph: Phases,
  pw: Phases,
  out: Float32Array,
  at: Layout,
) {
  const [kh, kw, cin, cout] = wShape;
  const { stride: sh, taps: th } = ph;
  const { stride: sw, taps: tw } = pw;
  out.fill(0);
  for (let mh = 0; mh < th; mh++) {
    for (let rh = 0; rh < sh; rh++) {
      const i = (th - 1 - mh) * sh + rh;
      if (i >= kh) continue;
      for (let mw = 0; mw < tw; mw++) {
        for (let rw = 0; rw < sw; rw++) {
          const j = (tw - 1 - mw) * sw + rw;
          if (j >= kw) continue;
          for (let ci = 0; ci < cin; ci++) {
            const src = ((i * kw + j) * cin + ci) * cout;
            const ch = (rh * sw + rw) * cin + ci;
            for (let co = 0; co < cout; co++) out[at(mh, mw, co, ch)] = w[src + co];
          }
        }
      }
    }
  }
}

/** dx[b, X, Y, :] = conv[b, (X+offH)/sh, (Y+offW)/sw, phase(X, Y) * cin : ... + cin]. */
function interleave(
  conv: Float32Array,
  convShape: number[],
  ph: Phases,
  pw: Phases,
  dx: Float32Array,
  dxShape: number[],
) {
  const [batch, h, w, cin] = dxShape;
  const [, qh, qw, depth] = convShape;
  for (let b = 0; b < batch; b++) {
    for (let oh = 0; oh < qh; oh++) {
      for (let rh = 0; rh < ph.stride; rh++) {
        const X = oh * ph.stride + rh - ph.offset;
        if (X < 0 || X >= h) continue;
        for (let ow = 0; ow < qw; ow++) {
          const src = ((b * qh + oh) * qw + ow) * depth + rh * pw.stride * cin;
          for (let rw = 0; rw < pw.stride; rw++) {
            const Y = ow * pw.stride + rw - pw.offset;
            if (Y < 0 || Y >= w) continue;
            const from = src + rw * cin;
            const to = ((b * h + X) * w + Y) * cin;
            if (cin >= 16) dx.set(conv.subarray(from, from + cin), to);
            else for (let c = 0; c < cin; c++) dx[to + c] = conv[from + c];
          }
        }
      }
    }
  }
}

export function conv2dBackpropInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  requireNhwc(NAME, a.dataFormat);
  requireFloat32(NAME, { dy, filter });
  const be = backend as WasmBackend;
  const info = convInfo(
    a.inputShape,
    filter.shape,
    a.strides,
    1,
    a.pad as Pad,
    a.dimRoundingMode as Rounding,
    false,
  );
  requireShape(NAME, 'dy', dy.shape, info.outShape);
  const ph = phases(
    info.inHeight,
    info.outHeight,
    info.filterHeight,
    info.strideHeight,
    info.padInfo.top,
  );
  const pw = phases(
    info.inWidth,
    info.outWidth,
    info.filterWidth,
    info.strideWidth,
    info.padInfo.left,
  );

  return withTemps(be, (temps) => {
    const depth = ph.stride * pw.stride * info.inChannels;
    const conv =
      (depth <= NARROW_DEPTH && ph.taps * pw.taps * info.outChannels >= NARROW_DOT
        ? narrow(be, temps, dy, filter, ph, pw, depth)
        : null) ?? viaXnnpack(be, temps, dy, filter, ph, pw, depth);
    if (ph.stride === 1 && pw.stride === 1) return conv; // already [b, h, w, cin]
    const dx = temps.make(info.inShape);
    interleave(f32(be, conv), conv.shape, ph, pw, f32(be, dx), info.inShape);
    return dx;
  });
}

/**
 * The narrow SIMD correlation beats XNNPACK up to this many output channels, when each output
 * sums at least NARROW_DOT products (measured: 1-3 channels over 3x3x32 taps, 2-3x faster;
 * 4 channels over 2x2x16, slower).
 */
const NARROW_DEPTH = 4;
const NARROW_DOT = 96;

/** The phase correlation by XNNPACK's Conv2D: [b, countH, countW, depth]. */
function viaXnnpack(
  be: WasmBackend,
  temps: Temps,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  ph: Phases,
  pw: Phases,
  depth: number,
): tf.TensorInfo {
  const cout = filter.shape[3];
  const f = temps.make([ph.taps, pw.taps, cout, depth]);
  // Padding is passed to the conv (XNNPACK pads on the fly); only negative padding needs a crop.
  const neg = (p: number) => Math.min(0, p);
  const dyc = padOrCrop(be, temps, dy, [
    neg(ph.before),
    neg(ph.after),
    neg(pw.before),
    neg(pw.after),
  ]);
  const layout: Layout = (mh, mw, co, ch) => ((mh * pw.taps + mw) * cout + co) * depth + ch;
  phaseFilter(f32(be, filter), filter.shape, ph, pw, f32(be, f), layout);
  const pos = (p: number) => Math.max(0, p);
  const pad = [
    [0, 0],
    [pos(ph.before), pos(ph.after)],
    [pos(pw.before), pos(pw.after)],
    [0, 0],
  ];
  const attrs = { strides: 1, dilations: 1, pad, dataFormat: 'NHWC' };
  return temps.add(run('Conv2D', be, { x: dyc, filter: f }, attrs));
}

/** The phase correlation by the narrow SIMD kernel, or null without wasm SIMD. */
function narrow(
  be: WasmBackend,
  temps: Temps,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  ph: Phases,
  pw: Phases,
  depth: number,
): tf.TensorInfo | null {
  const [batch, inH, inW, cout] = dy.shape;
  const f = temps.make([ph.taps, depth, pw.taps, cout]);
  const out = temps.make([batch, ph.count, pw.count, depth]);
  const layout: Layout = (mh, mw, co, ch) => ((mh * depth + ch) * pw.taps + mw) * cout + co;
  phaseFilter(f32(be, filter), filter.shape, ph, pw, f32(be, f), layout);
  const done = narrowConv(
    be.wasm,
    { x: heapOffset(be, dy), filter: heapOffset(be, f), out: heapOffset(be, out) },
    {
      batch,
      inH,
      inW,
      inChannels: cout,
      outH: ph.count,
      outW: pw.count,
      depth,
      filterH: ph.taps,
      filterW: pw.taps,
      padTop: ph.before,
      padLeft: pw.before,
    },
  );
  return done ? out : null;
}

export const conv2dBackpropInputConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: conv2dBackpropInput as unknown as tf.KernelFunc,
};
