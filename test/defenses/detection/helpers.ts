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

/**
 * n clean images per call: class c ∈ {0, 1} is a flat grey level (0.3 or 0.7) plus N(0, 0.03²);
 * "adversarial" ones add uniform noise in ±0.35 to fresh clean images (big-noise images).
 */
export function syntheticSet(n: number, seed: number) {
  const rng = new Rng(seed);
  const d = 16;
  const clean = new Float32Array(n * d);
  const adv = new Float32Array(n * d);
  const labels = new Int32Array(n);
  const clip = (v: number) => Math.min(1, Math.max(0, v));
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const level = labels[i] === 0 ? 0.3 : 0.7;
    for (let j = 0; j < d; j++) {
      clean[i * d + j] = clip(level + 0.03 * rng.normal());
      adv[i * d + j] = clip(level + 0.03 * rng.normal() + 0.7 * (rng.next() - 0.5));
    }
  }
  return {
    x: tf.tensor(clean, [n, ...SHAPE]),
    adv: tf.tensor(adv, [n, ...SHAPE]),
    labels: tf.tensor1d(labels, 'int32'),
  };
}
