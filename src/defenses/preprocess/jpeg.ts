/**
 * JPEG compression (Dziugaite et al. 2016; Das et al. 2017; Guo et al. 2018) with a real codec:
 * every image is encoded and decoded in-process by jpeg-js at quality `q` (1–100). Values are
 * mapped from `bounds` to bytes and back, so the output is quantised to 256 levels too.
 * Grayscale images are expanded to RGB for the codec and averaged back to one channel.
 * Non-differentiable (computed on the values); BPDA surrogate: identity (Athalye et al. 2018).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import jpeg from 'jpeg-js';
import { z } from 'zod';
import { ParryError } from '../../errors.js';
import { definePreprocessor, FILTER, fromValues, identity } from './preprocessor.js';

export const jpegSchema = z.object({ q: z.number().int().min(1).max(100).default(75) }).strict();

/** JPEG round trip of NHWC data `[b, h, w, c]` (c = 1 or 3) with values in bounds. */
type EncodeFn = (image: { data: Uint8Array; width: number; height: number }, q: number) => Buffer;

/**
 * jpeg-js's `encode` builds a new encoder per image, and its table set-up (two 65,535-entry
 * arrays of small arrays) costs ~60 ms of allocation and GC — for a 28×28 image, 200× the
 * encoding itself. Its encoder object is reusable (each call resets the bit writer and DC
 * predictors) but not exported, so this loads the pinned module's source and keeps one encoder
 * per quality. The output is byte-identical to `jpeg.encode` (tested); if the source cannot be
 * loaded this way the library's own `encode` is used.
 */
const encoders = new Map<number, EncodeFn>();
let encoderClass: (new (q: number) => { encode: EncodeFn }) | null | undefined;

function encoderFor(quality: number): EncodeFn {
  let fn = encoders.get(quality);
  if (fn) return fn;
  if (encoderClass === undefined) {
    try {
      const path = createRequire(import.meta.url).resolve('jpeg-js/lib/encoder.js');
      const source = readFileSync(path, 'utf8');
      encoderClass = new Function('module', 'Buffer', `${source}\nreturn JPEGEncoder;`)(
        { exports: {} },
        Buffer,
      );
    } catch {
      encoderClass = null;
    }
  }
  if (encoderClass) {
    const encoder = new encoderClass(quality);
    fn = (image, q) => encoder.encode(image, q);
  } else {
    fn = (image, q) => jpeg.encode(image, q).data;
  }
  encoders.set(quality, fn);
  return fn;
}

/** Which encoder `jpegRoundTrip` uses: the reused one, or the library's per-call fallback. */
export function jpegEncoderKind(): 'reused' | 'library' {
  encoderFor(75);
  return encoderClass ? 'reused' : 'library';
}

export function jpegRoundTrip(
  data: Float32Array,
  shape: readonly number[],
  bounds: readonly [number, number],
  quality: number,
): Float32Array {
  const [b, h, w, c] = shape;
  if (c !== 1 && c !== 3) {
    throw new ParryError('UNSUPPORTED', `jpeg: images need 1 or 3 channels, got ${c}`);
  }
  const [lo, hi] = bounds;
  const scale = 255 / (hi - lo);
  const out = new Float32Array(data.length);
  const rgba = new Uint8Array(h * w * 4);
  const encode = encoderFor(quality);
  for (let n = 0; n < b; n++) {
    const base = n * h * w * c;
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = data[base + p * c + (c === 1 ? 0 : ch)];
        rgba[p * 4 + ch] = Math.round(Math.min(255, Math.max(0, (v - lo) * scale)));
      }
      rgba[p * 4 + 3] = 255;
    }
    const encoded = encode({ data: rgba, width: w, height: h }, quality);
    const decoded = jpeg.decode(encoded, { useTArray: true, formatAsRGBA: true });
    for (let p = 0; p < h * w; p++) {
      const d = decoded.data;
      if (c === 1) {
        out[base + p] = lo + (d[p * 4] + d[p * 4 + 1] + d[p * 4 + 2]) / 3 / scale;
      } else {
        for (let ch = 0; ch < 3; ch++) out[base + p * 3 + ch] = lo + d[p * 4 + ch] / scale;
      }
    }
  }
  return out;
}

export const createJpeg = definePreprocessor('jpeg', jpegSchema, FILTER, (c) => ({
  apply: (x, bounds) => fromValues(x, (d) => jpegRoundTrip(d, x.shape, bounds, c.q)),
  surrogate: identity,
}));
