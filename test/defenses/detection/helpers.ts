/** A trivially separable synthetic set for detectors, and a tiny seeded Sequential model. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../../../src/engine/rng.js';
import { TfjsClassifier } from '../../../src/models/index.js';

export const SHAPE = [4, 4, 1];

/** flatten → dense(12, relu) → dense(8, relu) → dense(2), seeded weights. */
export function tinyModel(seed = 3, dropout = false): TfjsClassifier {
  const rng = new Rng(seed);
  const init = () => tfl.initializers.heNormal({ seed: rng.nextSeed() });
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: SHAPE }),
      tfl.layers.dense({ units: 12, activation: 'relu', kernelInitializer: init() }),
      ...(dropout ? [tfl.layers.dropout({ rate: 0.3 })] : []),
      tfl.layers.dense({ units: 8, activation: 'relu', kernelInitializer: init() }),
      tfl.layers.dense({ units: 2, kernelInitializer: init() }),
    ],
  });
  return new TfjsClassifier(model);
}

/** Trains a tiny model to tell the two grey levels apart (a few Adam steps, full batch). */
export async function trainTiny(
  model: TfjsClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
): Promise<void> {
  const lm = model.layersModel!;
  const optimizer = tf.train.adam(0.05);
  const vars = lm.trainableWeights.map((w) => w.read() as tf.Variable);
  const y = tf.oneHot(labels, 2);
  for (let t = 0; t < 60; t++) {
    optimizer.minimize(
      () => tf.losses.softmaxCrossEntropy(y, lm.apply(x) as tf.Tensor) as tf.Scalar,
      false,
      vars,
    );
  }
  tf.dispose([y]);
  optimizer.dispose();
}

/**
 * n clean images per call: class c ∈ {0, 1} is a flat grey level (2/7 or 5/7, on the 3-bit grid)
 * plus N(0, cleanNoise²);
 * "adversarial" ones sit between the classes: grey 0.5 plus uniform noise in ±0.35 (a shifted,
 * wider distribution: off the data in input and, for a trained model, in its activations).
 */
export function syntheticSet(n: number, seed: number, cleanNoise = 0.03) {
  const rng = new Rng(seed);
  const d = 16;
  const clean = new Float32Array(n * d);
  const adv = new Float32Array(n * d);
  const labels = new Int32Array(n);
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const level = labels[i] === 0 ? 2 / 7 : 5 / 7;
    for (let j = 0; j < d; j++) {
      clean[i * d + j] = clip(level + cleanNoise * rng.normal());
      adv[i * d + j] = clip(0.5 + 0.7 * (rng.next() - 0.5));
    }
  }
  return {
    x: tf.tensor(clean, [n, ...SHAPE]),
    adv: tf.tensor(adv, [n, ...SHAPE]),
    labels: tf.tensor1d(labels, 'int32'),
  };
}
