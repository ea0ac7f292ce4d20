/**
 * Example images as PNG: clean | adversarial | perturbation, side by side. The perturbation is
 * amplified to the full range (mid-grey = 0) so that small changes are visible; the factor is
 * returned so a caption can state it.
 */
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';

const GAP = 4;

/** Paints a `[h, w, c]` image (c = 1 or 3), each pixel a `zoom`×`zoom` block, at column `left`. */
function paint(
  png: PNG,
  left: number,
  pixels: ArrayLike<number>,
  [h, w, c]: number[],
  zoom: number,
  toByte: (v: number) => number,
) {
  for (let i = 0; i < h * zoom; i++) {
    for (let j = 0; j < w * zoom; j++) {
      const src = (Math.floor(i / zoom) * w + Math.floor(j / zoom)) * c;
      const o = (i * png.width + left + j) * 4;
      for (let ch = 0; ch < 3; ch++) png.data[o + ch] = toByte(pixels[src + (c === 1 ? 0 : ch)]);
      png.data[o + 3] = 255;
    }
  }
}

/**
 * Writes `path` with three panels for one example of shape `[h, w, c]`, enlarged `zoom` times
 * (nearest neighbour). Returns the
 * amplification applied to the perturbation panel.
 */
export function writeExamplePng(
  path: string,
  x: ArrayLike<number>,
  xAdv: ArrayLike<number>,
  shape: number[],
  bounds: readonly [number, number],
  zoom = 4,
): number {
  const [h, w] = [shape[0] * zoom, shape[1] * zoom];
  const png = new PNG({ width: 3 * w + 2 * GAP, height: h });
  png.data.fill(255);
  const [lo, hi] = bounds;
  const scale = (v: number) => Math.round((255 * (Math.min(hi, Math.max(lo, v)) - lo)) / (hi - lo));
  paint(png, 0, x, shape, zoom, scale);
  paint(png, w + GAP, xAdv, shape, zoom, scale);
  let maxAbs = 0;
  const delta = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    delta[i] = xAdv[i] - x[i];
    maxAbs = Math.max(maxAbs, Math.abs(delta[i]));
  }
  const amplify = maxAbs === 0 ? 1 : (hi - lo) / (2 * maxAbs);
  paint(png, 2 * (w + GAP), delta, shape, zoom, (v) =>
    Math.round(Math.min(255, Math.max(0, 127.5 + (255 * v * amplify) / (hi - lo)))),
  );
  writeFileSync(path, PNG.sync.write(png));
  return amplify;
}
