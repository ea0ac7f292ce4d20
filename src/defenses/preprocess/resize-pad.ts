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
import { parseWith } from '../../options.js';
import { needRng, type Preprocessor } from './preprocessor.js';

export const resizePadSchema = z.object({ scale: z.number().gt(0).max(1).default(0.85) }).strict();

export function createResizePad(params: unknown): Preprocessor {
  const c = parseWith('resize-pad', resizePadSchema, params);
  return {
    name: 'resize-pad',
    params: c,
    differentiable: true,
    randomized: true,
    apply: (x, bounds, maybeRng) => {
      const rng = needRng('resize-pad', maybeRng);
      const [b, h, w] = x.shape;
      return tf.tidy(() => {
        const images: tf.Tensor4D[] = [];
        for (let i = 0; i < b; i++) {
          const s = c.scale + (1 - c.scale) * rng.next();
          const rh = Math.max(1, Math.min(h, Math.round(s * h)));
          const rw = Math.max(1, Math.min(w, Math.round(s * w)));
          const top = rng.int(h - rh + 1);
          const left = rng.int(w - rw + 1);
          const image = tf.slice(x, [i, 0, 0, 0], [1, -1, -1, -1]);
          if (rh === h && rw === w) {
            images.push(image);
            continue;
          }
          const small = tf.image.resizeBilinear(image, [rh, rw], false, true);
          // Pad with the lower bound: pad zeros around (small − lo), then add lo back.
          const padded = tf.pad(tf.sub(small, bounds[0]), [
            [0, 0],
            [top, h - rh - top],
            [left, w - rw - left],
            [0, 0],
          ]);
          images.push(tf.add(padded, bounds[0]));
        }
        return tf.concat(images, 0);
      });
    },
    surrogate: (x) => tf.clone(x),
  };
}
