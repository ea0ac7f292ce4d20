/**
 * Saliency maps: which input values move a class score. This file is a stand-in with the public
 * API of the explain module; it implements only the vanilla gradient (Simonyan, Vedaldi &
 * Zisserman 2014). 'smoothgrad' and 'integrated-gradients' throw UNSUPPORTED until the full
 * module replaces it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { check, ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';

export type SaliencyMethod = 'gradient' | 'smoothgrad' | 'integrated-gradients';

export interface SaliencyOptions {
  /** smoothgrad: noisy copies; integrated-gradients: path steps. */
  samples?: number;
  /** smoothgrad: noise standard deviation as a fraction of the bounds' range. */
  noise?: number;
  /** integrated-gradients: the constant baseline value. */
  baseline?: number;
  seed?: number;
}

/**
 * Saliency of `classes[i]` for each example of x `[batch, ...inputShape]`; same shape as x.
 * 'gradient': |∂ logit_c / ∂x|. Caller owns the result; x is not disposed.
 */
export function saliency(
  model: Classifier,
  x: tf.Tensor,
  classes: Int32Array | number[],
  method: SaliencyMethod,
  _options: SaliencyOptions = {},
): tf.Tensor {
  if (method !== 'gradient') {
    throw new ParryError('UNSUPPORTED', `saliency: method '${method}' is not available`);
  }
  check(
    classes.length === x.shape[0],
    () => `saliency: ${classes.length} classes for a batch of ${x.shape[0]}`,
  );
  return tf.tidy(() => {
    const mask = tf.oneHot(tf.tensor1d(Array.from(classes), 'int32'), model.numClasses);
    const grad = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(model.logits(z), mask)))(x);
    return tf.abs(grad);
  });
}

/**
 * A saliency map `shape` = `[h, w, c]` as a greyscale PNG (channels averaged, scaled so the
 * largest value is white), each pixel a `zoom`×`zoom` block.
 */
export function saliencyPng(map: ArrayLike<number>, shape: number[], zoom = 4): Buffer {
  const [h, w, c = 1] = shape;
  const cell = new Float32Array(h * w);
  let max = 0;
  for (let p = 0; p < h * w; p++) {
    let s = 0;
    for (let ch = 0; ch < c; ch++) s += Math.abs(map[p * c + ch]);
    cell[p] = Number.isFinite(s) ? s / c : 0;
    max = Math.max(max, cell[p]);
  }
  const png = new PNG({ width: w * zoom, height: h * zoom });
  for (let i = 0; i < h * zoom; i++) {
    for (let j = 0; j < w * zoom; j++) {
      const v =
        max === 0
          ? 0
          : Math.round((255 * cell[Math.floor(i / zoom) * w + Math.floor(j / zoom)]) / max);
      const o = (i * png.width + j) * 4;
      png.data[o] = png.data[o + 1] = png.data[o + 2] = v;
      png.data[o + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

export function pngDataUri(png: Buffer): string {
  return `data:image/png;base64,${png.toString('base64')}`;
}
