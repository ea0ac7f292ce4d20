/** Small seeded networks and a sampler for the soundness tests of IBP and CROWN. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { TfjsClassifier, type TfjsClassifierOptions } from '../../../src/models/index.js';
import { values } from '../../attacks/helpers.js';

/**
 * Replaces every weight of `model` by seeded values: kernels U(±1.5/√fanIn), biases U(±0.5),
 * BatchNormalization statistics away from the identity (variance in [0.3, 2], mean ±0.5,
 * gamma in [0.5, 1.5], beta ±0.5).
 */
export function randomize(model: tfl.LayersModel, seed: number): void {
  let s = seed;
  for (const layer of model.layers.flatMap((l) =>
    l instanceof tfl.LayersModel ? l.layers : [l],
  )) {
    const weights = layer.weights.map((w) => {
      const short = w.originalName.split('/').pop() ?? '';
      const shape = w.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1);
      const fanIn = shape.length > 1 ? n / shape[shape.length - 1] : 1;
      const range: Record<string, [number, number]> = {
        kernel: [-1.5 / Math.sqrt(fanIn), 1.5 / Math.sqrt(fanIn)],
        bias: [-0.5, 0.5],
        moving_mean: [-0.5, 0.5],
        moving_variance: [0.3, 2],
        gamma: [0.5, 1.5],
        beta: [-0.5, 0.5],
      };
      const [lo, hi] = range[short] ?? [-0.5, 0.5];
      return tf.tensor(values(n, ++s, lo, hi), shape);
    });
    if (weights.length > 0) layer.setWeights(weights);
    tf.dispose(weights);
  }
}

/** A classifier around `model` after seeding its weights. */
export function seeded(
  model: tfl.LayersModel,
  seed: number,
  opts: TfjsClassifierOptions = {},
): TfjsClassifier {
  randomize(model, seed);
  return new TfjsClassifier(model, opts);
}

/** A classifier around `tfl.sequential(layers)` with seeded weights. */
export function seededClassifier(
  layers: tfl.layers.Layer[],
  seed: number,
  opts: TfjsClassifierOptions = {},
): TfjsClassifier {
  return seeded(tfl.sequential({ layers }), seed, opts);
}

/**
 * `perExample` points in each example's box [lo, hi] `[batch, ...]`: the first quarter are
 * random corners (each coordinate lo or hi), the rest uniform. Returns `[batch·perExample, ...]`
 * grouped by example.
 */
export function sampleBox(lo: tf.Tensor, hi: tf.Tensor, perExample: number, seed: number) {
  return tf.tidy(() => {
    const [b, ...shape] = lo.shape;
    const rep = (t: tf.Tensor) =>
      tf.reshape(tf.tile(tf.expandDims(t, 1), [1, perExample, ...shape.map(() => 1)]), [
        b * perExample,
        ...shape,
      ]);
    const l = rep(lo);
    const h = rep(hi);
    const u = tf.randomUniform(l.shape, 0, 1, 'float32', seed);
    const corners = tf.cast(tf.greater(u, 0.5), 'float32');
    const isCorner = tf.less(
      tf.reshape(tf.tile(tf.expandDims(tf.range(0, perExample), 0), [b, 1]), [b * perExample]),
      Math.floor(perExample / 4),
    );
    const mask = tf.reshape(isCorner, [b * perExample, ...shape.map(() => 1)]);
    const t = tf.where(tf.broadcastTo(mask, l.shape), corners, u);
    return tf.add(l, tf.mul(t, tf.sub(h, l)));
  });
}
