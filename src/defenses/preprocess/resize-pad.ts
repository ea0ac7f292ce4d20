/**
 * Random resizing and padding (Xie, Wang, Zhang, Ren & Yuille 2018). The paper enlarges a
 * 299-pixel image to a random r ∈ [299, 331) and pads it at a random offset to 331; parry's
 * classifiers take a fixed input shape, so here the image is shrunk to a random side fraction
 * s ~ U(scale, 1) and padded back to its size at a random offset with the lower bound (black),
 * the same randomisation in the model's own resolution. Identity at scale 1. Randomised and
 * differentiable; the adaptive attack is EOT.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { definePreprocessor, needRng, perImageRegions, RANDOM_RESAMPLE } from './preprocessor.js';

export const resizePadSchema = z.object({ scale: z.number().gt(0).max(1).default(0.85) }).strict();

export const createResizePad = definePreprocessor(
  'resize-pad',
  resizePadSchema,
  RANDOM_RESAMPLE,
  (c) => ({
    apply: (x, bounds, maybeRng) => {
      const [, h, w] = x.shape;
      return perImageRegions(x, c.scale, needRng('resize-pad', maybeRng), (i, r) => {
        const image = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]);
        if (r.rh === h && r.rw === w) return image;
        const small = tf.image.resizeBilinear(image, [r.rh, r.rw], false, true);
        // Pad with the lower bound: pad zeros around (small − lo), then add lo back.
        const pads: [number, number][] = [
          [0, 0],
          [r.top, h - r.rh - r.top],
          [r.left, w - r.rw - r.left],
          [0, 0],
        ];
        return tf.add(tf.pad(tf.sub(small, bounds[0]), pads), bounds[0]);
      });
    },
    surrogate: (x) => tf.clone(x),
  }),
);
