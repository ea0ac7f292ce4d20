/**
 * Example images as PNG: clean | adversarial | perturbation. The perturbation is amplified to the
 * full range (mid-grey = 0) so that small changes are visible; the factor is returned so a
 * caption can state it. `imagePng` and `perturbationPng` return one panel each as a PNG Buffer
 * (for data URIs in a report); `writeExamplePng` writes the three panels side by side to a file.
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

/** Maps values in `bounds` to bytes 0..255 (clipped). */
function boundsToByte([lo, hi]: readonly [number, number]): (v: number) => number {
  return (v) => Math.round((255 * (Math.min(hi, Math.max(lo, v)) - lo)) / (hi - lo));
}

/** xAdv − x, and the factor that stretches its largest magnitude to half the bounds' range. */
function amplified(
  x: ArrayLike<number>,
  xAdv: ArrayLike<number>,
  [lo, hi]: readonly [number, number],
) {
  let maxAbs = 0;
  const delta = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    delta[i] = xAdv[i] - x[i];
    maxAbs = Math.max(maxAbs, Math.abs(delta[i]));
  }
  const amplification = maxAbs === 0 ? 1 : (hi - lo) / (2 * maxAbs);
  const toByte = (v: number) =>
    Math.round(Math.min(255, Math.max(0, 127.5 + (255 * v * amplification) / (hi - lo))));
  return { delta, amplification, toByte };
}

/** One image `[h, w, c]` with values in `bounds`, enlarged `zoom` times, as a PNG. */
export function imagePng(
  pixels: ArrayLike<number>,
  shape: number[],
  bounds: readonly [number, number],
  zoom = 4,
): Buffer {
  const png = new PNG({ width: shape[1] * zoom, height: shape[0] * zoom });
  paint(png, 0, pixels, shape, zoom, boundsToByte(bounds));
  return PNG.sync.write(png);
}

/** The perturbation xAdv − x amplified about mid-grey, as a PNG, with its amplification. */
export function perturbationPng(
  x: ArrayLike<number>,
  xAdv: ArrayLike<number>,
  shape: number[],
  bounds: readonly [number, number],
  zoom = 4,
): { png: Buffer; amplification: number } {
  const { delta, amplification, toByte } = amplified(x, xAdv, bounds);
  const png = new PNG({ width: shape[1] * zoom, height: shape[0] * zoom });
  paint(png, 0, delta, shape, zoom, toByte);
  return { png: PNG.sync.write(png), amplification };
}

/** A PNG as a `data:` URI for an `<img src>`. */
export function pngDataUri(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}

/**
 * Writes `path` with three panels for one example of shape `[h, w, c]`, enlarged `zoom` times
 * (nearest neighbour). Returns the amplification applied to the perturbation panel.
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
  paint(png, 0, x, shape, zoom, boundsToByte(bounds));
  paint(png, w + GAP, xAdv, shape, zoom, boundsToByte(bounds));
  const { delta, amplification, toByte } = amplified(x, xAdv, bounds);
  paint(png, 2 * (w + GAP), delta, shape, zoom, toByte);
  writeFileSync(path, PNG.sync.write(png));
  return amplification;
}
