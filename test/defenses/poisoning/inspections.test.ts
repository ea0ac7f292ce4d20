/**
 * Activation clustering, deep k-NN and loss filtering against planted poisons in controlled
 * features (a model whose penultimate features are its input), their building blocks against
 * independent computations (silhouette by hand, PCA on a line, neighbours by brute force,
 * cross-entropy by hand), and the registry's option checks.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { type Dataset, syntheticDataset } from '../../../src/data/index.js';
import {
  activationClustering,
  deepKnn,
  exampleLosses,
  freshCopy,
  INSPECTIONS,
  lossFiltering,
  nearestNeighbours,
  pcaProject,
  runInspection,
  scoreInspection,
  silhouette,
} from '../../../src/defenses/poisoning/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { buildArchitecture, TfjsClassifier } from '../../../src/models/index.js';
import { caught } from '../../models/tmp.js';

/** A classifier on [2, 2, 1] inputs whose penultimate features are the 4 input values. */
function identityFeatures(): TfjsClassifier {
  const features = tfl.layers.dense({ units: 4, inputShape: [4], useBias: false, name: 'id' });
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [2, 2, 1] }),
      features,
      tfl.layers.dense({ units: 2 }),
    ],
  });
  features.setWeights([tf.eye(4)]);
  return new TfjsClassifier(model);
}

/**
 * 200 examples per class: class 0 around 0.5, class 1 around 0.3 (σ 0.05 per value). The first
 * `poisons` of class 0 are class-1 content with a trigger (+0.3 on value 0), labelled 0; the first
 * `natural` of class 1 are a clean sub-population of class 1 (value 3 lowered by 0.25, floor 0).
 */
function planted(poisons: number, natural: number): { data: Dataset; indices: number[] } {
  const rng = new Rng(4);
  const n = 400;
  const x = new Float32Array(n * 4);
  const labels = new Int32Array(n);
  const indices: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = i < 200 ? 0 : 1;
    labels[i] = y;
    const poison = y === 0 && i < poisons;
    for (let j = 0; j < 4; j++)
      x[i * 4 + j] = (y === 0 && !poison ? 0.5 : 0.3) + 0.05 * rng.normal();
    if (poison) {
      x[i * 4] += 0.3;
      indices.push(i);
    }
    if (y === 1 && i - 200 < natural) x[i * 4 + 3] = Math.max(0, x[i * 4 + 3] - 0.25);
  }
  return { data: { name: 'planted', x, labels, shape: [n, 2, 2, 1], numClasses: 2 }, indices };
}

describe('activation clustering', () => {
  it('mean silhouette equals a hand computation', () => {
    // 1-D points 0, 1 (cluster 0) and 10 (cluster 1, alone: counts 0).
    const s = silhouette(Float64Array.from([0, 1, 10]), 3, 1, [0, 0, 1]);
    expect(s).toBeCloseTo((9 / 10 + 8 / 9 + 0) / 3, 12);
  });

  it('PCA projects points on a line onto their centred coordinate along it', () => {
    const t = [-2, -1, 0.5, 3, 4.5];
    const x = Float64Array.from(t.flatMap((v) => [v, 2 * v]));
    const p = pcaProject(x, t.length, 2, 1);
    const mean = t.reduce((a, b) => a + b) / t.length;
    const sign = Math.sign(p[0]) * Math.sign(t[0] - mean);
    t.forEach((v, i) => {
      expect(p[i]).toBeCloseTo(sign * (v - mean) * Math.sqrt(5), 10);
    });
  });

  it('flags a planted backdoor cluster exactly; reclassification spares a natural sub-population', async () => {
    const model = identityFeatures();
    const { data, indices } = planted(30, 40);
    const weights = model.layersModel!.getWeights().map((w) => Array.from(w.dataSync()));
    const before = tf.memory().numTensors;
    // The paper's reclassification: a fresh copy trained without the suspicious clusters.
    const retrain = { seed: 1, retrainEpochs: 40, lr: 0.05, batchSize: 32 };
    const r = await activationClustering(model, data, retrain);
    expect(tf.memory().numTensors).toBe(before);
    // The model inspected is left as it was.
    expect(model.layersModel!.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(weights);
    expect(r.flagged).toEqual(indices);
    const s = scoreInspection(r, indices);
    expect([s.precision, s.recall, s.falsePositiveRate, s.auc]).toEqual([1, 1, 0, 1]);
    const [c0, c1] = r.perClass;
    expect(c0).toMatchObject({ class: 0, examples: 200, relativeSize: 0.15, flagged: 30 });
    expect(c0.reclassifiedTo).toBe(1);
    expect(c0.ownToOtherRatio).toBeLessThan(1);
    expect(c0.silhouette).toBeGreaterThan(0.5);
    // Class 1's sub-population is small and separate too, but reclassifies as class 1.
    expect(c1).toMatchObject({ class: 1, reclassifiedTo: 0, flagged: 0 });
    expect(c1.relativeSize).toBeCloseTo(0.2, 1);
    expect(c1.ownToOtherRatio).toBeGreaterThan(1);
    // The class-mean stand-in agrees here (the features are the inputs, not a backdoored layer).
    const means = await activationClustering(model, data, { seed: 1, reclassify: 'class-mean' });
    expect(means.flagged).toEqual(indices);
    // Without reclassification, both small clusters are flagged.
    const loose = await activationClustering(model, data, { seed: 1, reclassify: 'none' });
    expect(loose.flagged.length).toBeGreaterThanOrEqual(70);
    expect(scoreInspection(loose, indices).recall).toBe(1);
    // A clean set: no class splits into a small cluster.
    const clean = await activationClustering(model, planted(0, 0).data, retrain);
    expect(clean.flagged).toEqual([]);
    model.dispose();
  });
});

describe('deep k-NN', () => {
  it('finds the same neighbours as a brute-force search', () => {
    const rng = new Rng(7);
    const n = 60;
    const d = 3;
    const f = Float64Array.from({ length: n * d }, () => rng.normal());
    const k = 4;
    const nn = nearestNeighbours(f, n, d, k);
    for (let i = 0; i < n; i++) {
      const dist = (j: number) =>
        [0, 1, 2].reduce((s, m) => s + (f[i * d + m] - f[j * d + m]) ** 2, 0);
      const order = Array.from({ length: n }, (_, j) => j)
        .filter((j) => j !== i)
        .sort((a, b) => dist(a) - dist(b));
      expect(Array.from(nn.subarray(i * k, (i + 1) * k))).toEqual(order.slice(0, k));
    }
  });

  it('flags exactly the flipped labels of two separated classes', () => {
    const model = identityFeatures();
    const { data } = planted(0, 0);
    const labels = Int32Array.from(data.labels);
    const flipped = [3, 50, 120, 210, 333];
    for (const i of flipped) labels[i] = 1 - labels[i];
    const before = tf.memory().numTensors;
    const r = deepKnn(model, { ...data, labels }, { k: 10 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.flagged).toEqual(flipped);
    for (const i of flipped) expect(r.scores[i]).toBe(1);
    expect(scoreInspection(r, flipped).auc).toBe(1);
    expect(r.perClass.map((c) => c.flagged)).toEqual([2, 3]);
    model.dispose();
  });
});

describe('loss filtering', () => {
  it('per-example cross-entropy equals a hand computation', () => {
    const model = identityFeatures();
    const last = model.layersModel!.layers[2];
    last.setWeights([tf.tensor2d([1, 0, 0, 1, 2, -1, 0, 0], [4, 2]), tf.tensor1d([0.1, -0.2])]);
    const x = Float32Array.from([0.2, 0.4, 0.1, 0.9, 0.7, 0.3, 0.5, 0.0]);
    const labels = Int32Array.from([1, 0]);
    const losses = exampleLosses(model, {
      name: 'two',
      x,
      labels,
      shape: [2, 2, 2, 1],
      numClasses: 2,
    });
    for (let i = 0; i < 2; i++) {
      const v = x.subarray(i * 4, i * 4 + 4);
      const z0 = v[0] + 2 * v[2] + 0.1;
      const z1 = v[1] - v[2] - 0.2;
      const z = [z0, z1];
      const lse = Math.log(Math.exp(z0) + Math.exp(z1));
      expect(losses[i]).toBeCloseTo(lse - z[labels[i]], 5);
    }
    model.dispose();
  });

  it('a fresh copy is seeded, Glorot-bounded, and leaves the original alone', async () => {
    const lm = buildArchitecture('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
    const original = lm.getWeights().map((w) => w.dataSync().slice());
    const a = await freshCopy(lm, 5);
    const b = await freshCopy(lm, 5);
    const c = await freshCopy(lm, 6);
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    expect(b.getWeights().map((w) => Array.from(w.dataSync()))).toEqual(wa);
    expect(c.getWeights().map((w) => Array.from(w.dataSync()))).not.toEqual(wa);
    lm.getWeights().forEach((w, i) => {
      expect(w.dataSync()).toEqual(original[i]);
    });
    a.weights.forEach((w, i) => {
      const shape = w.shape as number[];
      if (/kernel/.test(w.name)) {
        const limit = Math.sqrt(6 / (shape[0] + shape[1]));
        expect(Math.max(...wa[i].map(Math.abs))).toBeLessThanOrEqual(limit);
        expect(Math.max(...wa[i].map(Math.abs))).toBeGreaterThan(limit / 2);
      } else {
        expect(wa[i].every((v) => v === 0)).toBe(true);
      }
    });
    for (const m of [lm, a, b, c]) m.dispose();
  });

  it('after a short warm-up, flipped labels have the highest losses', async () => {
    const shape = [6, 6, 1];
    const clean = syntheticDataset({ shape, numClasses: 3, n: 600, seed: 4, noise: 0.15 });
    const rng = new Rng(9);
    const labels = Int32Array.from(clean.labels);
    const flipped: number[] = [];
    for (let i = 0; i < labels.length; i++) {
      if (rng.next() < 0.1) {
        labels[i] = (labels[i] + 1 + rng.int(2)) % 3;
        flipped.push(i);
      }
    }
    const data = { ...clean, labels };
    const model = new TfjsClassifier(
      buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 2 }),
    );
    const before = tf.memory().numTensors;
    const options = { fraction: flipped.length / labels.length, warmupEpochs: 2, seed: 3 };
    const r = await lossFiltering(model, data, options);
    expect(tf.memory().numTensors).toBe(before);
    const s = scoreInspection(r, flipped);
    expect(s.recall).toBeGreaterThan(0.9);
    expect(s.auc).toBeGreaterThan(0.95);
    expect(r.flagged).toHaveLength(Math.floor(options.fraction * labels.length));
    // Seeded: the same options give the same flags.
    expect((await lossFiltering(model, data, options)).flagged).toEqual(r.flagged);
    model.dispose();
  });
});

describe('inspection registry', () => {
  it('lists the four methods and refuses options a method does not read, naming both', async () => {
    expect(INSPECTIONS.map((e) => e.name)).toEqual(['ac', 'spectral', 'knn', 'loss']);
    const model = identityFeatures();
    const { data } = planted(0, 0);
    const e = await caught(() => runInspection('knn', model, data, { fraction: 0.1 }));
    expect(e.message).toMatch(/knn.*fraction|fraction.*knn/);
    const bad = await caught(() => runInspection('ac', model, data, { dims: 0 }));
    expect(bad.message).toMatch(/dims/);
    const unknown = await caught(() => runInspection('strip', model, data, {}));
    expect(unknown.message).toMatch(/strip.*ac, spectral, knn, loss|known/);
    const big = await caught(() => runInspection('knn', model, data, { k: 400 }));
    expect(big.message).toMatch(/k = 400/);
    model.dispose();
  });
});
