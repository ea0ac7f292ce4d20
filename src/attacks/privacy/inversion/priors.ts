/**
 * Image priors of model inversion: what makes a reconstruction look like an image rather than
 * the noise that maximises a class score (Fredrikson et al. 2015 denoise between steps;
 * Mahendran & Vedaldi 2015 add total variation and norm terms to the cost). Each is a
 * differentiable per-example value `[batch]`, normalised per input value so that its weight
 * means the same at every image size. No function disposes its inputs; the caller owns results.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../../errors.js';

/**
 * Anisotropic total variation of images `[batch, h, w, c]`: Σ |x[i+1, j] − x[i, j]| +
 * Σ |x[i, j+1] − x[i, j]| over rows, columns and channels, divided by h·w·c. `[batch]`.
 */
export function totalVariation(x: tf.Tensor): tf.Tensor1D {
  check(x.rank === 4, () => `totalVariation: x must be [batch, h, w, c], got [${x.shape}]`);
  const [, h, w, c] = x.shape;
  return tf.tidy(() => {
    const down = tf.abs(
      tf.sub(
        tf.slice(x, [0, 1, 0, 0], [-1, h - 1, w, c]),
        tf.slice(x, [0, 0, 0, 0], [-1, h - 1, w, c]),
      ),
    );
    const right = tf.abs(
      tf.sub(
        tf.slice(x, [0, 0, 1, 0], [-1, h, w - 1, c]),
        tf.slice(x, [0, 0, 0, 0], [-1, h, w - 1, c]),
      ),
    );
    return tf.div(
      tf.add(tf.sum(down, [1, 2, 3]), tf.sum(right, [1, 2, 3])),
      h * w * c,
    ) as tf.Tensor1D;
  });
}

/** Mean squared distance of each example `[batch, ...]` to `centre`, `[batch]`. */
export function l2Prior(x: tf.Tensor, centre: number): tf.Tensor1D {
  return tf.tidy(
    () => tf.mean(tf.square(tf.sub(tf.reshape(x, [x.shape[0], -1]), centre)), 1) as tf.Tensor1D,
  );
}
