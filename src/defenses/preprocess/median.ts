/**
 * Feature squeezing by median smoothing (Xu, Evans & Qi 2018): every pixel, per channel, becomes
 * the median of its k×k window (k odd), the image extended by reflect padding (numpy 'reflect').
 * Computed on the values in JS (tfjs has no differentiable median); BPDA surrogate: identity.
 */
import { z } from 'zod';
import { parseWith } from '../../config.js';
import { fromValues, identity, type Preprocessor } from './preprocessor.js';

export const medianSchema = z
  .object({
    k: z
      .number()
      .int()
      .min(1)
      .max(15)
      .refine((k) => k % 2 === 1, 'k must be odd')
      .default(3),
  })
  .strict();

/** Reflect index into [0, n) (no edge repeat); assumes |overhang| < n. */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  let j = i;
  while (j < 0 || j >= n) j = j < 0 ? -j : 2 * (n - 1) - j;
  return j;
}

/** Median filter of NHWC data `[b, h, w, c]`, window k. */
export function medianFilter(
  data: Float32Array,
  shape: readonly number[],
  k: number,
): Float32Array {
  const [b, h, w, c] = shape;
  const r = (k - 1) >> 1;
  const out = new Float32Array(data.length);
  const win = new Float32Array(k * k);
  for (let n = 0; n < b; n++) {
    const base = n * h * w * c;
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        for (let ch = 0; ch < c; ch++) {
          let m = 0;
          for (let di = -r; di <= r; di++) {
            const ii = reflect(i + di, h);
            for (let dj = -r; dj <= r; dj++) {
              win[m++] = data[base + (ii * w + reflect(j + dj, w)) * c + ch];
            }
          }
          win.sort();
          out[base + (i * w + j) * c + ch] = win[(k * k - 1) >> 1];
        }
      }
    }
  }
  return out;
}

export function createMedian(params: unknown): Preprocessor {
  const c = parseWith('median', medianSchema, params);
  return {
    name: 'median',
    params: c,
    differentiable: false,
    randomized: false,
    apply: (x) => fromValues(x, (d) => medianFilter(d, x.shape, c.k)),
    surrogate: identity,
  };
}
