/**
 * Private squeezers for the feature-squeezing detector (the preprocessing defences in
 * `defenses/preprocess` are built separately; these stay local to detection). Both keep the
 * input's shape `[batch, h, w, c]` and values in bounds. Each is wrapped with a BPDA gradient:
 * the forward value is exact, the backward pass is the identity (Athalye et al. 2018), since
 * rounding and order statistics have zero or useless gradients.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Reduces to `bits` bits per value over `bounds`: round(u·(2^b − 1)) / (2^b − 1). */
export function bitDepth(x: tf.Tensor, bits: number, bounds: [number, number]): tf.Tensor {
  return tf.tidy(() => {
    const [lo, hi] = bounds;
    const levels = 2 ** bits - 1;
    const u = tf.div(tf.sub(x, lo), hi - lo);
    const q = tf.div(tf.round(tf.mul(u, levels)), levels);
    return tf.add(tf.mul(q, hi - lo), lo);
  });
}

/**
 * Median filter over `size`×`size` windows per channel, as scipy.ndimage.median_filter (mode
 * 'reflect' = tf.mirrorPad 'symmetric'; rank ⌊size²/2⌋ of the ascending window, so an even
 * window takes the upper median; the window covers offsets [−⌊size/2⌋, size − 1 − ⌊size/2⌋]).
 */
export function medianFilter(x: tf.Tensor4D, size: number): tf.Tensor4D {
  return tf.tidy(() => {
    if (size <= 1) return tf.clone(x);
    const [b, h, w, c] = x.shape;
    const before = Math.floor(size / 2);
    const after = size - 1 - before;
    const padded = tf.mirrorPad(
      x,
      [
        [0, 0],
        [before, after],
        [before, after],
        [0, 0],
      ],
      'symmetric',
    );
    const windows: tf.Tensor4D[] = [];
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) windows.push(tf.slice(padded, [0, i, j, 0], [b, h, w, c]));
    }
    const stacked = tf.stack(windows, 4); // [b, h, w, c, size²]
    const kth = size * size - Math.floor((size * size) / 2); // descending position of the rank
    const top = tf.topk(stacked, kth).values;
    return tf.reshape(tf.slice(top, [0, 0, 0, 0, kth - 1], [b, h, w, c, 1]), [b, h, w, c]);
  });
}

/** `squeeze` with an identity gradient (BPDA). */
export function withIdentityGradient(
  squeeze: (x: tf.Tensor) => tf.Tensor,
): (x: tf.Tensor) => tf.Tensor {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
    value: squeeze(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => dy,
  }));
  return (x) => f(x);
}
