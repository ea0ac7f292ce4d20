/**
 * Neural Cleanse on a hand-made backdoored linear classifier (nearest class mean on synthetic
 * images, plus a large weight from one corner pixel to class 0): the planted trigger is recovered
 * (the smallest mask, on the corner, class 0 flagged alone), the anomaly index equals a hand
 * computation, and unlearning with the reversed trigger removes most of the backdoor.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { type Dataset, syntheticDataset } from '../../../src/data/index.js';
import {
  anomalyIndices,
  neuralCleanse,
  unlearn,
  unlearningSet,
} from '../../../src/defenses/poisoning/index.js';
import { TfjsClassifier } from '../../../src/models/index.js';

const H = 8;
const K = 6;
const CORNER = H * H - 1;

/** Synthetic 8×8 images of 6 classes with the corner pixel 0; a linear nearest-mean model. */
function backdoored(triggerWeight: number): { model: TfjsClassifier; data: Dataset } {
  const raw = syntheticDataset({ shape: [H, H, 1], numClasses: K, n: 600, seed: 3, noise: 0.1 });
  const x = Float32Array.from(raw.x);
  for (let i = 0; i < 600; i++) x[i * H * H + CORNER] = 0;
  const data = { ...raw, x };
  const means = new Float32Array(K * H * H);
  const counts = new Float32Array(K);
  for (let i = 0; i < 600; i++) {
    counts[data.labels[i]]++;
    for (let j = 0; j < H * H; j++) means[data.labels[i] * H * H + j] += x[i * H * H + j];
  }
  const kernel = new Float32Array(H * H * K);
  const bias = new Float32Array(K);
  for (let k = 0; k < K; k++) {
    for (let j = 0; j < H * H; j++) {
      const m = means[k * H * H + j] / counts[k];
      kernel[j * K + k] = m;
      bias[k] -= 0.5 * m * m;
    }
  }
  kernel[CORNER * K + 0] = triggerWeight;
  const dense = tfl.layers.dense({ units: K, inputShape: [H * H], name: 'logits' });
  const lm = tfl.sequential({
    layers: [tfl.layers.flatten({ inputShape: [H, H, 1] }), dense],
  });
  dense.setWeights([tf.tensor2d(kernel, [H * H, K]), tf.tensor1d(bias)]);
  return { model: new TfjsClassifier(lm), data };
}

/** Share of the images (corner set to 1, class ≠ 0) the model sends to class 0. */
function triggerSuccess(model: TfjsClassifier, data: Dataset): number {
  return tf.tidy(() => {
    const x = Float32Array.from(data.x);
    const keep: number[] = [];
    for (let i = 0; i < data.shape[0]; i++) {
      x[i * H * H + CORNER] = 1;
      if (data.labels[i] !== 0) keep.push(i);
    }
    const xs = tf.gather(tf.tensor4d(x, [data.shape[0], H, H, 1]), keep);
    const pred = tf.argMax(model.logits(xs), 1).dataSync();
    return pred.filter((p) => p === 0).length / keep.length;
  });
}

const options = { rounds: 40, stepsPerRound: 5, batchSize: 64, seed: 1 };

describe('neural cleanse', () => {
  it('the anomaly index is |l − median| / (1.4826·MAD)', () => {
    const r = anomalyIndices([1, 6, 7, 8, 9]);
    // median 7; deviations 6, 1, 0, 1, 2 → MAD 1.
    expect(r.median).toBe(7);
    expect(r.mad).toBeCloseTo(1.4826, 12);
    expect(r.indices[0]).toBeCloseTo(6 / 1.4826, 10);
    expect(r.indices[2]).toBe(0);
  });

  it('recovers the planted corner trigger and flags class 0 alone', () => {
    const { model, data } = backdoored(15);
    expect(triggerSuccess(model, data)).toBe(1);
    const before = tf.memory().numTensors;
    const r = neuralCleanse(model, data, options);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.flagged).toEqual([0]);
    const t0 = r.triggers[0];
    expect(t0.reached).toBe(true);
    // The smallest mask by far, concentrated on the corner pixel, whose pattern is near 1.
    const others = r.triggers.slice(1).map((t) => t.l1);
    expect(t0.l1).toBeLessThan(Math.min(...others) / 3);
    const top = t0.mask.indexOf(Math.max(...t0.mask));
    expect(top).toBe(CORNER);
    expect(t0.mask[CORNER]).toBeGreaterThan(0.5 * t0.l1);
    expect(t0.pattern[CORNER]).toBeGreaterThan(0.8);
    expect(r.classes[0].anomalyIndex).toBeGreaterThan(2);
    // Seeded: the same options give the same masks.
    expect(neuralCleanse(model, data, options).triggers[0].mask).toEqual(t0.mask);
    model.dispose();
  });

  it('unlearning with the reversed trigger removes most of the backdoor, keeping accuracy', async () => {
    const { model, data } = backdoored(15);
    const r = neuralCleanse(model, data, { ...options, classes: [0, 1, 2] });
    const set = unlearningSet(data, [r.triggers[0]], 0.2, 4);
    expect(set.stamped).toHaveLength(120);
    // Stamped exactly: (1 − m)·x + m·p on the stamped examples, the rest untouched.
    const i = set.stamped[0];
    const j = [...Array(600).keys()].find((k) => !set.stamped.includes(k))!;
    const m = r.triggers[0].mask[CORNER];
    expect(set.data.x[i * H * H + CORNER]).toBeCloseTo(m * r.triggers[0].pattern[CORNER], 6);
    expect(set.data.x.subarray(j * H * H, (j + 1) * H * H)).toEqual(
      data.x.subarray(j * H * H, (j + 1) * H * H),
    );
    expect(triggerSuccess(model, data)).toBe(1);
    await unlearn(model.layersModel!, data, [r.triggers[0]], { epochs: 3, lr: 0.05, seed: 2 });
    expect(triggerSuccess(model, data)).toBeLessThan(0.2);
    const acc = tf.tidy(() => {
      const pred = tf.argMax(model.logits(tf.tensor4d(data.x, [600, H, H, 1])), 1).dataSync();
      return pred.filter((p, k) => p === data.labels[k]).length / 600;
    });
    expect(acc).toBeGreaterThan(0.9);
    model.dispose();
  });
});
