import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { decisionClassifierFrom } from '../../../src/attacks/evasion/black-box.js';
import {
  augmentationSignal,
  boundarySignal,
  noiseSignal,
} from '../../../src/attacks/privacy/label-only.js';
import { applyQuery, queriesOf } from '../../../src/attacks/privacy/reference-models.js';
import type { Dataset } from '../../../src/data/index.js';
import type { Classifier } from '../../../src/models/classifier.js';

/** A two-class linear model on flattened inputs: logits [0, w·x + b]. */
function linear(shape: number[], w: number[], b: number): Classifier {
  const wt = tf.keep(tf.tensor2d(w, [w.length, 1]));
  return {
    inputShape: shape,
    numClasses: 2,
    bounds: [0, 1],
    logits: (x) =>
      tf.tidy(() => {
        const s = tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), wt), b);
        return tf.concat([tf.zerosLike(s), s], 1) as tf.Tensor2D;
      }),
  };
}

function dataset(x: number[], shape: number[], labels: number[]): Dataset {
  return {
    name: 'toy',
    x: Float32Array.from(x),
    labels: Int32Array.from(labels),
    shape: [labels.length, ...shape],
    numClasses: 2,
  } as Dataset;
}

/** Standard normal cdf (Abramowitz–Stegun 7.1.26 through erf), for expected hit rates. */
function phi(z: number): number {
  const t = 1 / (1 + (0.3275911 * Math.abs(z)) / Math.SQRT2);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-(z * z) / 2);
  return z >= 0 ? (1 + y) / 2 : (1 - y) / 2;
}

describe('label-only membership signals', () => {
  it('augmentation: the share of augmented copies labelled y, as applying each query directly gives', async () => {
    // Class 1 when the left half of a 4×4 image is brighter than the right half.
    const shape = [4, 4, 1];
    const w: number[] = [];
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) w.push(c < 2 ? 1 : -1);
    const model = linear(shape, w, 0);
    const x: number[] = [];
    for (let i = 0; i < 6; i++) for (let p = 0; p < 16; p++) x.push(((i * 7 + p * 5) % 11) / 10);
    const labels = [1, 0, 1, 0, 0, 1];
    const data = dataset(x, shape, labels);
    const before = tf.memory().numTensors;
    const got = await augmentationSignal(decisionClassifierFrom(model), data, {
      queries: 'flip-shift',
    });
    // Independent: each query applied, the linear score computed by hand.
    const xt = tf.tensor4d(x, [6, 4, 4, 1]);
    const queries = queriesOf('flip-shift');
    for (let i = 0; i < 6; i++) {
      let hits = 0;
      for (const q of queries) {
        const v = applyQuery(xt, q);
        const d = v.dataSync();
        v.dispose();
        let s = 0;
        for (let p = 0; p < 16; p++) s += w[p] * d[i * 16 + p];
        if ((s > 0 ? 1 : 0) === labels[i]) hits++;
      }
      expect(got[i]).toBeCloseTo(hits / queries.length, 12);
    }
    xt.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('noise: the hit rate follows Φ(margin/σ) and repeats from the seed', async () => {
    // One pixel, class 1 above 0.5.
    const model = decisionClassifierFrom(linear([1, 1, 1], [1], -0.5));
    const data = dataset([0.55, 0.45, 0.9], [1, 1, 1], [1, 1, 1]);
    const cfg = { sigma: 0.1, samples: 3000, seed: 4 };
    const a = await noiseSignal(model, data, cfg);
    expect(a[0]).toBeCloseTo(phi(0.5), 1);
    expect(Math.abs(a[0] - phi(0.5))).toBeLessThan(0.03);
    expect(Math.abs(a[1] - phi(-0.5))).toBeLessThan(0.03);
    expect(a[2]).toBeGreaterThan(0.99);
    expect(await noiseSignal(model, data, cfg)).toEqual(a);
  });

  it('boundary: HopSkipJump distances match the distance to a linear boundary; misclassified → 0', async () => {
    const shape = [2, 2, 1];
    const w = [0.8, -0.5, 0.3, 0.1];
    const b = -0.2;
    const model = decisionClassifierFrom(linear(shape, w, b));
    const pts = [
      [0.9, 0.1, 0.8, 0.5],
      [0.2, 0.7, 0.1, 0.3],
      [0.6, 0.4, 0.5, 0.5],
      [0.1, 0.9, 0.2, 0.2],
    ];
    const score = (p: number[]) => p.reduce((s, v, i) => s + v * w[i], b);
    const labels: number[] = pts.map((p) => (score(p) > 0 ? 1 : 0));
    labels[3] = 1 - labels[3]; // misclassified on purpose
    const data = dataset(pts.flat(), shape, labels);
    const norm = Math.hypot(...w);
    const before = tf.memory().numTensors;
    const d = await boundarySignal(model, data, { maxQueries: 3000, steps: 30, seed: 1 });
    for (let i = 0; i < 3; i++) {
      const exact = Math.abs(score(pts[i])) / norm;
      expect(d[i]).toBeGreaterThanOrEqual(exact * 0.999);
      expect(d[i]).toBeLessThan(exact * 1.05);
    }
    expect(d[3]).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses examples of another shape than the model takes', async () => {
    const model = decisionClassifierFrom(linear([1, 1, 1], [1], 0));
    const data = dataset([0, 1, 0, 1], [2, 2, 1], [0]);
    await expect(noiseSignal(model, data)).rejects.toThrow(
      /have shape \[2, 2, 1\], the model takes \[1, 1, 1\]/,
    );
  });
});
