/**
 * No tensor leaks in long loops: 100 batches of forward + input gradient, and of training steps,
 * leave `tf.memory().numTensors` where it started.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { syntheticDataset } from '../../src/data/index.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';
import { crossEntropy } from '../../src/objectives/losses.js';
import { trainModel } from '../../src/train/loop.js';

describe('memory over long loops (wasm)', () => {
  it('100 batches of forward + input gradient through cnn-small keep numTensors flat', () => {
    const model = buildArchitecture('cnn-small', {
      inputShape: [28, 28, 1],
      numClasses: 10,
      seed: 2,
    });
    const classifier = new TfjsClassifier(model, { mean: [0.3], std: [0.4] });
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 3);
    const y = tf.tensor1d([0, 1, 2, 3], 'int32');
    const lossOf = (z: tf.Tensor) => tf.sum(crossEntropy(classifier.logits(z), y));
    tf.tidy(() => tf.grad(lossOf)(x)); // warm-up: lazily built weights and kernels
    const before = tf.memory().numTensors;
    let checksum = 0;
    for (let i = 0; i < 100; i++) {
      const g = tf.tidy(() => tf.grad(lossOf)(x));
      checksum += g.dataSync()[0];
      g.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    expect(Number.isFinite(checksum)).toBe(true);
    x.dispose();
    y.dispose();
    model.dispose();
  });

  it('training for 100 steps keeps numTensors flat', async () => {
    const data = syntheticDataset({ shape: [12, 12, 1], numClasses: 4, n: 400, seed: 5 });
    const model = buildArchitecture('cnn-small', {
      inputShape: [12, 12, 1],
      numClasses: 4,
      seed: 2,
    });
    await trainModel(model, data, { epochs: 1, batchSize: 4, seed: 1 }); // warm-up: optimizer slots
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    await trainModel(
      model,
      data,
      { epochs: 1, batchSize: 4, seed: 2 },
      {
        onBatch: () => counts.push(tf.memory().numTensors),
      },
    );
    // A new optimizer per call: its slots are freed with it.
    expect(tf.memory().numTensors).toBe(before);
    expect(new Set(counts).size).toBe(1);
    model.dispose();
  });
});
