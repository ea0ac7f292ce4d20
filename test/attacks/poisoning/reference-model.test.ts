/**
 * The model-based poisoning attacks on the committed fmnist-cnn-small and the bundled
 * Fashion-MNIST subset, at their default step settings and a handful of poisons: feature
 * collision closes most of the feature-space gap in its default 100 iterations, gradient matching
 * lowers the alignment loss within a few signed-Adam steps. Crafting only; no retraining (attack
 * success over training runs belongs to the benchmark, not to tests).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featureCollision } from '../../../src/attacks/poisoning/feature-collision.js';
import { gradientMatching } from '../../../src/attacks/poisoning/gradient-matching.js';
import { type Dataset, loadDataset } from '../../../src/data/index.js';
import { loadClassifier, type TfjsClassifier } from '../../../src/models/index.js';
import { changedImages, example, expectUnitRange } from './helpers.js';

let cnn: TfjsClassifier;
let train: Dataset;
let test: Dataset;

beforeAll(async () => {
  cnn = await loadClassifier('models/fmnist-cnn-small', { engine: 'tfjs' });
  train = loadDataset('fashion-mnist-subset', 'train');
  test = loadDataset('fashion-mnist-subset', 'test');
});
afterAll(() => cnn.dispose());

describe('poisoning fmnist-cnn-small', { timeout: 300_000 }, () => {
  it('feature collision (defaults, 2 poisons) closes most of the feature gap', async () => {
    // A shirt (6) to be seen as a T-shirt/top (0).
    const targetImage = Array.from(test.labels.keys()).find((i) => test.labels[i] === 6)!;
    const r = await featureCollision(train, { target: 0, targetImage }, { model: cnn, test });
    expect(r.poisonedIndices).toHaveLength(2);
    expect(changedImages(train, r.dataset)).toEqual(r.poisonedIndices);
    expectUnitRange(r.dataset.x);
    const s = r.summary!;
    // Measured: 112.6 → 0.34.
    expect(s.featureDistanceAfter).toBeLessThan(0.05 * s.featureDistanceBefore);
    // How far each poison moved from its watermarked base, against the base-to-target distance.
    const t = example(test, targetImage);
    for (const j of r.poisonedIndices) {
      const b = example(train, j);
      const p = example(r.dataset, j);
      let moved = 0;
      let gap = 0;
      for (let q = 0; q < t.length; q++) {
        const bw = 0.7 * b[q] + 0.3 * t[q];
        moved += (p[q] - bw) ** 2;
        gap += (bw - t[q]) ** 2;
      }
      expect(Math.sqrt(moved)).toBeLessThan(0.5 * Math.sqrt(gap));
    }
  });

  it('gradient matching (params dense) lowers the alignment loss on a conv model', async () => {
    const targetImages = Array.from(test.labels.keys())
      .filter((i) => test.labels[i] === 6)
      .slice(0, 2);
    const before = tf.memory().numTensors;
    const r = await gradientMatching(
      train,
      { rate: 0.005, target: 0, targetImages, steps: 8, restarts: 1 },
      { model: cnn, test },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(r.poisonedIndices).toHaveLength(10);
    const s = r.summary!;
    // Measured: 0.371 → 0.282 in 8 steps.
    expect(s.alignmentLoss).toBeLessThan(0.9 * s.alignmentLossClean);
  });
});
