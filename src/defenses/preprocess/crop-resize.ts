/**
 * Random crop-and-resize (Guo, Rana, Cissé & van der Maaten 2018, "image cropping-rescaling"):
 * per image, a random crop of side fraction s ~ U(scale, 1) at a random position, resized back to
 * the input size (bilinear, half-pixel centres). At scale 1 it is the identity. Randomised and
 * differentiable (slice + bilinear resize); the adaptive attack is EOT.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { parseWith } from '../../options.js';
import { needRng, type Preprocessor } from './preprocessor.js';

export const cropResizeSchema = z.object({ scale: z.number().gt(0).max(1).default(0.9) }).strict();

export function createCropResize(params: unknown): Preprocessor {
  const c = parseWith('crop', cropResizeSchema, params);
  return {
    name: 'crop',
    params: c,
    differentiable: true,
    randomized: true,
    apply: (x, _bounds, maybeRng) => {
      const rng = needRng('crop', maybeRng);
      const [b, h, w] = x.shape;
      return tf.tidy(() => {
        const images: tf.Tensor4D[] = [];
        for (let i = 0; i < b; i++) {
          const s = c.scale + (1 - c.scale) * rng.next();
          const ch = Math.max(1, Math.min(h, Math.round(s * h)));
          const cw = Math.max(1, Math.min(w, Math.round(s * w)));
          const top = rng.int(h - ch + 1);
          const left = rng.int(w - cw + 1);
          const crop = tf.slice(x, [i, top, left, 0], [1, ch, cw, -1]);
          images.push(
            ch === h && cw === w ? crop : tf.image.resizeBilinear(crop, [h, w], false, true),
          );
        }
        return tf.concat(images, 0);
      });
    },
    surrogate: (x) => tf.clone(x),
  };
}
