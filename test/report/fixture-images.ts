/** Small generated PNG data URIs for the report fixture's gallery (28×28, like Fashion-MNIST). */
import { PNG } from 'pngjs';
import type { GalleryItem, Norm } from '../../src/evaluate/results.js';

/** A PNG data URI of `width`×`height` RGB pixels. */
function pngUri(
  width: number,
  height: number,
  pixel: (i: number, j: number) => [number, number, number],
): string {
  const png = new PNG({ width, height });
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const o = (i * width + j) * 4;
      const [r, g, b] = pixel(i, j);
      png.data[o] = r;
      png.data[o + 1] = g;
      png.data[o + 2] = b;
      png.data[o + 3] = 255;
    }
  }
  return `data:image/png;base64,${PNG.sync.write(png).toString('base64')}`;
}

/**
 * A gallery item: a grey garment-like blob (its shape drawn from `rand`), the blob plus a sign
 * perturbation of size min(eps, 0.1), the perturbation amplified, and Gaussian-blob saliency maps.
 */
export function galleryItem(
  rand: () => number,
  attack: string,
  norm: Norm,
  eps: number,
  index: number,
  label: number,
  fooled: boolean,
  saliency: boolean,
): GalleryItem {
  const [cy, cx, ry, rx] = [14, 14, 8 + 4 * rand(), 5 + 5 * rand()];
  const x = (i: number, j: number) =>
    ((i - cy) / ry) ** 2 + ((j - cx) / rx) ** 2 < 1 ? 0.55 + 0.3 * Math.sin(i / 2 + label) : 0;
  const noise = Array.from({ length: 28 * 28 }, () => (rand() < 0.5 ? -1 : 1));
  const d = (i: number, j: number) => noise[i * 28 + j] * Math.min(eps, 0.1);
  const grey = (v: number): [number, number, number] => {
    const b = Math.round(255 * Math.min(1, Math.max(0, v)));
    return [b, b, b];
  };
  const heat = (v: number): [number, number, number] => [
    Math.round(255 * v),
    Math.round(180 * v * v),
    Math.round(60 * (1 - v)),
  ];
  const sal = (shift: number) =>
    pngUri(28, 28, (i, j) => heat(Math.exp(-(((i - cy - shift) / 5) ** 2 + ((j - cx) / 4) ** 2))));
  const adversarialPrediction = fooled ? (label + 1 + Math.floor(rand() * 8)) % 10 : label;
  return {
    attack,
    norm,
    eps,
    index,
    label,
    cleanPrediction: label,
    cleanConfidence: 0.9 + 0.09 * rand(),
    adversarialPrediction,
    adversarialConfidence: 0.5 + 0.45 * rand(),
    clean: pngUri(28, 28, (i, j) => grey(x(i, j))),
    adversarial: pngUri(28, 28, (i, j) => grey(x(i, j) + d(i, j))),
    perturbation: pngUri(28, 28, (i, j) => grey(0.5 + d(i, j) / (2 * Math.min(eps, 0.1)))),
    amplification: 1 / (2 * Math.min(eps, 0.1)),
    saliency: saliency ? [{ method: 'gradient', clean: sal(0), adversarial: sal(4) }] : [],
  };
}
