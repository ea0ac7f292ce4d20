/**
 * Feature squeezing by median smoothing (Xu, Evans & Qi 2018): every pixel, per channel, becomes
 * the median of its k×k window (k odd), the image extended by reflect padding (numpy 'reflect').
 * Computed on the values in JS (tfjs has no differentiable median); BPDA surrogate: identity.
 */
import { z } from 'zod';
import { definePreprocessor, FILTER, fromValues, identity } from './preprocessor.js';

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

/**
 * How the image is extended past its border: 'reflect' mirrors without repeating the edge
 * (numpy 'reflect': c b | a b c | b a), 'symmetric' repeats it (numpy 'symmetric', which is
 * scipy.ndimage's 'reflect': b a | a b c | c b).
 */
export type MedianPadding = 'reflect' | 'symmetric';

/** Index into [0, n) for position i past the border, mirrored as `padding` says. */
function mirror(i: number, n: number, padding: MedianPadding): number {
  if (n === 1) return 0;
  let j = i;
  while (j < 0 || j >= n) {
    if (padding === 'reflect') j = j < 0 ? -j : 2 * (n - 1) - j;
    else j = j < 0 ? -j - 1 : 2 * n - 1 - j;
  }
  return j;
}

/** For every position in [0, n): the source index of each window offset in [−before, after]. */
function windowIndex(n: number, before: number, size: number, padding: MedianPadding): Int32Array {
  const idx = new Int32Array(n * size);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < size; d++) idx[i * size + d] = mirror(i + d - before, n, padding);
  }
  return idx;
}

/**
 * Median filter of NHWC data `[b, h, w, c]` over `size`×`size` windows per channel, as
 * scipy.ndimage.median_filter: the window covers offsets [−⌊size/2⌋, size − 1 − ⌊size/2⌋] and the
 * result is the value of rank ⌊size²/2⌋ in ascending order (the median for odd `size`, the upper
 * median for even). `padding` defaults to numpy 'reflect'; pass 'symmetric' for scipy's default.
 */
export function medianFilter(
  data: Float32Array,
  shape: readonly number[],
  size: number,
  padding: MedianPadding = 'reflect',
): Float32Array {
  const [b, h, w, c] = shape;
  const before = Math.floor(size / 2);
  const rows = windowIndex(h, before, size, padding);
  const cols = windowIndex(w, before, size, padding);
  const rank = Math.floor((size * size) / 2);
  const out = new Float32Array(data.length);
  const win = new Float32Array(size * size);
  for (let n = 0; n < b; n++) {
    const base = n * h * w * c;
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        for (let ch = 0; ch < c; ch++) {
          let m = 0;
          for (let di = 0; di < size; di++) {
            const row = base + rows[i * size + di] * w * c + ch;
            for (let dj = 0; dj < size; dj++) win[m++] = data[row + cols[j * size + dj] * c];
          }
          win.sort();
          out[base + (i * w + j) * c + ch] = win[rank];
        }
      }
    }
  }
  return out;
}

export const createMedian = definePreprocessor('median', medianSchema, FILTER, (c) => ({
  apply: (x) => fromValues(x, (d) => medianFilter(d, x.shape, c.k)),
  surrogate: identity,
}));
