/**
 * Feature squeezing by bit-depth reduction (Xu, Evans & Qi 2018): each value, rescaled to [0, 1]
 * over `bounds`, is rounded to one of 2^bits levels. Non-differentiable (tf.round has a zero
 * gradient), so a plain gradient attack sees a flat loss; BPDA uses the identity surrogate.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { parseWith } from '../../options.js';
import { identity, type Preprocessor } from './preprocessor.js';

export const bitDepthSchema = z
  .object({ bits: z.number().int().min(1).max(16).default(4) })
  .strict();

export function createBitDepth(params: unknown): Preprocessor {
  const c = parseWith('squeeze-bits', bitDepthSchema, params);
  const levels = 2 ** c.bits - 1;
  return {
    name: 'squeeze-bits',
    params: c,
    differentiable: false,
    randomized: false,
    apply: (x, [lo, hi]) =>
      tf.tidy(() => {
        const unit = tf.div(tf.sub(x, lo), hi - lo);
        const q = tf.div(tf.round(tf.mul(tf.clipByValue(unit, 0, 1), levels)), levels);
        return tf.add(tf.mul(q, hi - lo), lo);
      }),
    surrogate: identity,
  };
}
