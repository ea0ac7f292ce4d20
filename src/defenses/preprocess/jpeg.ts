/**
 * JPEG compression (Dziugaite et al. 2016; Das et al. 2017; Guo et al. 2018) with a real codec:
 * every image is encoded and decoded in-process by jpeg-js at quality `q` (1–100). Values are
 * mapped from `bounds` to bytes and back, so the output is quantised to 256 levels too.
 * Grayscale images are expanded to RGB for the codec and averaged back to one channel.
 * Non-differentiable (computed on the values); BPDA surrogate: identity (Athalye et al. 2018).
 */
import jpeg from 'jpeg-js';
import { z } from 'zod';
import { parseWith } from '../../config.js';
import { ParryError } from '../../errors.js';
import { fromValues, identity, type Preprocessor } from './preprocessor.js';

export const jpegSchema = z.object({ q: z.number().int().min(1).max(100).default(75) }).strict();

/** JPEG round trip of NHWC data `[b, h, w, c]` (c = 1 or 3) with values in bounds. */
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
  for (let n = 0; n < b; n++) {
    const base = n * h * w * c;
    for (let p = 0; p < h * w; p++) {
      for (let ch = 0; ch < 3; ch++) {
        const v = data[base + p * c + (c === 1 ? 0 : ch)];
        rgba[p * 4 + ch] = Math.round(Math.min(255, Math.max(0, (v - lo) * scale)));
      }
      rgba[p * 4 + 3] = 255;
    }
    const encoded = jpeg.encode({ data: rgba, width: w, height: h }, quality);
    const decoded = jpeg.decode(encoded.data, { useTArray: true, formatAsRGBA: true });
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

export function createJpeg(params: unknown): Preprocessor {
  const c = parseWith('jpeg', jpegSchema, params);
  return {
    name: 'jpeg',
    params: c,
    differentiable: false,
    randomized: false,
    apply: (x, bounds) => fromValues(x, (d) => jpegRoundTrip(d, x.shape, bounds, c.q)),
    surrogate: identity,
  };
}
