/**
 * Private squeezers for the feature-squeezing detector (the preprocessing defenses in
 * `defenses/preprocess` are built separately; only the median's JS kernel is shared, here with
 * scipy's padding as in Xu et al.'s reference code). Both keep the
 * input's shape `[batch, h, w, c]` and values in bounds. Each is wrapped with a BPDA gradient:
 * the forward value is exact, the backward pass is the identity (Athalye et al. 2018), since
 * rounding and order statistics have zero or useless gradients.
 */
import * as tf from '@tensorflow/tfjs-core';
import { medianFilter as medianValues } from '../preprocess/median.js';

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
 * 'reflect' = numpy 'symmetric'; rank ⌊size²/2⌋ of the ascending window, so an even window takes
 * the upper median; the window covers offsets [−⌊size/2⌋, size − 1 − ⌊size/2⌋]). Order statistics
 * are scalar work: the JS kernel is about 4× faster on wasm than a `topk` over stacked windows.
 */
export function medianFilter(x: tf.Tensor4D, size: number): tf.Tensor4D {
  if (size <= 1) return tf.clone(x);
  const values = medianValues(x.dataSync() as Float32Array, x.shape, size, 'symmetric');
  return tf.tensor4d(values, x.shape);
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
