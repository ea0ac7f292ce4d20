/**
 * Random crop-and-resize (Guo, Rana, Cissé & van der Maaten 2018, "image cropping-rescaling"):
 * per image, a random crop of side fraction s ~ U(scale, 1) at a random position, resized back to
 * the input size (bilinear, half-pixel centres). At scale 1 it is the identity. Randomised and
 * differentiable (slice + bilinear resize); the adaptive attack is EOT.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { definePreprocessor, needRng, perImageRegions, RANDOM_RESAMPLE } from './preprocessor.js';

export const cropResizeSchema = z.object({ scale: z.number().gt(0).max(1).default(0.9) }).strict();

export const createCropResize = definePreprocessor(
  'crop',
  cropResizeSchema,
  RANDOM_RESAMPLE,
  (c) => ({
    apply: (x, _bounds, maybeRng) => {
      const [, h, w] = x.shape;
      return perImageRegions(x, c.scale, needRng('crop', maybeRng), (i, r) => {
        const crop = tf.slice(x, [i, r.top, r.left, 0], [1, r.rh, r.rw, -1]);
        return r.rh === h && r.rw === w ? crop : tf.image.resizeBilinear(crop, [h, w], false, true);
      });
    },
    surrogate: (x) => tf.clone(x),
  }),
);
