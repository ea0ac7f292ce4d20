/**
 * Fine-pruning on a hand-made convolutional net with a planted backdoor channel (dormant on clean
 * data, firing on a one-pixel trigger): channels go in increasing order of their mean activation
 * (computed here independently with tf.conv2d), the backdoor channel first; pruning stops where
 * the clean accuracy would drop too far; pruned weights stay exactly zero through fine-tuning.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../../src/data/index.js';
import { finePrune } from '../../../src/defenses/poisoning/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { TfjsClassifier } from '../../../src/models/index.js';

const S = 6;
const C = 4;

/** Class 1 when the top half is brighter than the bottom half; values in [0, 0.9]. */
function data(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: n * S * S }, () => 0.9 * rng.next());
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let top = 0;
    let bottom = 0;
    for (let p = 0; p < S * S; p++) {
      if (p < (S * S) / 2) top += x[i * S * S + p];
      else bottom += x[i * S * S + p];
    }
    labels[i] = top > bottom ? 1 : 0;
  }
  return { name: 'halves', x, labels, shape: [n, S, S, 1], numClasses: 2 };
}

/**
 * conv 3×3 (relu) with channels 0–2 box filters scaled 1, 0.5, 0.25 and channel 3 a detector of a
 * pixel near 1 (10·centre − 9.5); dense: channels 0–2 vote top rows → class 1, bottom → class 0;
 * channel 3 at output (3, 3) → class 0 with weight 50.
 */
function backdoored(): TfjsClassifier {
  const conv = tfl.layers.conv2d({
    filters: C,
    kernelSize: 3,
    activation: 'relu',
    inputShape: [S, S, 1],
    name: 'conv',
  });
  const dense = tfl.layers.dense({ units: 2, name: 'logits' });
  const lm = tfl.sequential({ layers: [conv, tfl.layers.flatten(), dense] });
  const kernel = new Float32Array(9 * C);
  const bias = new Float32Array(C);
  const scale = [1, 0.5, 0.25];
  for (let k = 0; k < 9; k++) for (let c = 0; c < 3; c++) kernel[k * C + c] = scale[c] / 9;
  kernel[4 * C + 3] = 10;
  bias[3] = -9.5;
  conv.setWeights([tf.tensor4d(kernel, [3, 3, 1, C]), tf.tensor1d(bias)]);
  const out = S - 2;
  const w = new Float32Array(out * out * C * 2);
  for (let i = 0; i < out; i++) {
    for (let j = 0; j < out; j++) {
      for (let c = 0; c < 3; c++) {
        const row = (i * out + j) * C + c;
        w[row * 2 + (i < out / 2 ? 1 : 0)] = 1 / scale[c];
      }
    }
  }
  w[((3 * out + 3) * C + 3) * 2 + 0] = 50;
  dense.setWeights([tf.tensor2d(w, [out * out * C, 2]), tf.zeros([2])]);
  return new TfjsClassifier(lm);
}

/** The same net without the backdoor's dense weight: what the trigger pixel does on its own. */
function cleanTwin(): TfjsClassifier {
  const model = backdoored();
  const dense = model.layersModel!.layers[2];
  const [w, b] = dense.getWeights();
  const v = w.dataSync().slice();
  v[((3 * (S - 2) + 3) * C + 3) * 2] = 0;
  dense.setWeights([tf.tensor2d(v, w.shape as [number, number]), b]);
  return model;
}

const zero = (v: number) => Math.abs(v) === 0;

function predict(model: TfjsClassifier, x: Float32Array, n: number): Int32Array {
  return tf.tidy(
    () => tf.argMax(model.logits(tf.tensor4d(x, [n, S, S, 1])), 1).dataSync() as Int32Array,
  );
}

/** Share of class-1 examples sent to class 0 by the trigger (pixel (4, 4) set to 1). */
function triggerSuccess(model: TfjsClassifier, d: Dataset): number {
  const x = Float32Array.from(d.x);
  const n = d.shape[0];
  for (let i = 0; i < n; i++) x[i * S * S + 4 * S + 4] = 1;
  const p = predict(model, x, n);
  let ones = 0;
  let moved = 0;
  for (let i = 0; i < n; i++) {
    if (d.labels[i] !== 1) continue;
    ones++;
    if (p[i] === 0) moved++;
  }
  return moved / ones;
}

describe('fine-pruning', () => {
  const clean = data(400, 1);

  it('prunes by increasing mean activation, the backdoor channel first, up to maxFraction', async () => {
    const model = backdoored();
    expect(triggerSuccess(model, clean)).toBe(1);
    // Mean activations, computed directly.
    const conv = model.layersModel!.layers[0];
    const [k, b] = conv.getWeights();
    const means = tf.tidy(() =>
      tf
        .mean(
          tf.relu(
            tf.add(
              tf.conv2d(tf.tensor4d(clean.x, [400, S, S, 1]), k as tf.Tensor4D, 1, 'valid'),
              b,
            ),
          ),
          [0, 1, 2],
        )
        .dataSync(),
    );
    const before = tf.memory().numTensors;
    const r = await finePrune(model, clean, { maxFraction: 0.5, epochs: 0 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.layer).toBe('conv');
    expect(r.channels).toBe(C);
    r.meanActivation.forEach((m, c) => {
      expect(m).toBeCloseTo(means[c], 5);
    });
    expect(means[3]).toBe(0);
    expect(r.pruned).toEqual([3, 2]);
    // The brighter pixel still moves a few borderline examples, exactly as in the clean twin.
    const twin = cleanTwin();
    const baseline = triggerSuccess(twin, clean);
    twin.dispose();
    expect(baseline).toBeLessThan(0.5);
    expect(triggerSuccess(model, clean)).toBeCloseTo(baseline, 10);
    expect(r.accuracyPruned).toBe(r.accuracyBefore);
    const [k2, b2] = conv.getWeights();
    const kv = k2.dataSync();
    for (let i = 0; i < 9; i++) {
      expect(zero(kv[i * C + 3]) && zero(kv[i * C + 2])).toBe(true);
      expect(kv[i * C + 0]).not.toBe(0);
    }
    expect(zero(b2.dataSync()[3])).toBe(true);
    model.dispose();
  });

  it('stops before the clean accuracy drops too far; fine-tuning keeps pruned weights at zero', async () => {
    const model = backdoored();
    const r = await finePrune(model, clean, {
      maxFraction: 1,
      maxAccuracyDrop: 0.01,
      epochs: 1,
      lr: 0.001,
      seed: 3,
    });
    // Channels 3, 2 and 1 go; removing the last box filter would leave chance accuracy.
    expect(r.pruned).toEqual([3, 2, 1]);
    expect(r.accuracyPruned).toBeGreaterThanOrEqual(r.accuracyBefore - 0.01);
    const [conv, , dense] = model.layersModel!.layers;
    const kv = conv.getWeights()[0].dataSync();
    const bv = conv.getWeights()[1].dataSync();
    const dv = dense.getWeights()[0].dataSync();
    for (const c of [1, 2, 3]) {
      expect(zero(bv[c])).toBe(true);
      for (let i = 0; i < 9; i++) expect(zero(kv[i * C + c])).toBe(true);
      for (let row = c; row < 16 * C; row += C) {
        expect(zero(dv[row * 2]) && zero(dv[row * 2 + 1])).toBe(true);
      }
    }
    expect(r.accuracyAfter).toBeGreaterThan(r.accuracyBefore - 0.1);
    model.dispose();
  });

  it('refuses a layer that is not a ReLU convolution, naming it', async () => {
    const model = backdoored();
    await expect(finePrune(model, clean, { layer: 'logits' })).rejects.toThrow(
      /'logits' is a Dense/,
    );
    await expect(finePrune(model, clean, { layer: 'nope' })).rejects.toThrow(
      /no layer named 'nope'.*conv/,
    );
    model.dispose();
  });
});
