/** Saliency maps as PNG heatmaps, for reports and HTML pages. */
import { PNG } from 'pngjs';
import { check } from '../errors.js';

/**
 * Heatmap PNG of one example's map (`[h, w, c]`, or `[h, w]` for one channel): each pixel's value
 * is Σ_c |map|, normalised to the map's maximum (so the scale is relative to this map only), and
 * painted on a white→red ramp: 0 is white (255, 255, 255), the maximum pure red (255, 0, 0). An
 * all-zero map is all white. Enlarged `zoom`× by nearest neighbour.
 */
export function saliencyPng(map: ArrayLike<number>, shape: number[], zoom = 4): Buffer {
  check(
    (shape.length === 2 || shape.length === 3) && shape.every((d) => Number.isInteger(d) && d >= 1),
    () => `saliencyPng: shape must be [h, w, c] or [h, w] of positive integers, got [${shape}]`,
  );
  const [h, w, c = 1] = shape;
  check(
    map.length === h * w * c,
    () => `saliencyPng: map has ${map.length} values, shape [${shape}] needs ${h * w * c}`,
  );
  check(
    Number.isInteger(zoom) && zoom >= 1,
    () => `saliencyPng: zoom must be an integer >= 1, got ${zoom}`,
    'BAD_OPTION',
  );
  const heat = new Float64Array(h * w);
  let max = 0;
  for (let p = 0; p < h * w; p++) {
    for (let ch = 0; ch < c; ch++) heat[p] += Math.abs(map[p * c + ch]);
    check(Number.isFinite(heat[p]), () => `saliencyPng: map has NaN or infinite values`);
    max = Math.max(max, heat[p]);
  }
  const png = new PNG({ width: w * zoom, height: h * zoom });
  for (let i = 0; i < h * zoom; i++) {
    for (let j = 0; j < w * zoom; j++) {
      const t = max > 0 ? heat[Math.floor(i / zoom) * w + Math.floor(j / zoom)] / max : 0;
      const fade = Math.round(255 * (1 - t));
      const o = (i * png.width + j) * 4;
      png.data[o] = 255;
      png.data[o + 1] = fade;
      png.data[o + 2] = fade;
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

/** `data:image/png;base64,...` for embedding a PNG in HTML or Markdown. */
export function pngDataUri(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}
