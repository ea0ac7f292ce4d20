/**
 * Gradient matching (Witches' Brew): the alignment loss's input gradient — a second derivative
 * through the parameter gradient — against central finite differences on a tiny tanh net; the
 * loss is 0 when the poisons are the targets themselves; crafting lowers it, keeps labels and
 * stays within eps and [0, 1]; it runs through a convolutional model with params 'dense' and
 * refuses 'all' there.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  alignmentLoss,
  parameterGradient,
  parameterModel,
  trainingLoss,
} from '../../../src/attacks/poisoning/gradient-alignment.js';
import { gradientMatching } from '../../../src/attacks/poisoning/gradient-matching.js';
import type { Dataset } from '../../../src/data/dataset.js';
import { syntheticDataset } from '../../../src/data/synthetic.js';
import { Rng } from '../../../src/engine/rng.js';
import { TfjsClassifier } from '../../../src/models/index.js';
import { cnnModel, values } from '../helpers.js';
import {
  changedImages,
  example,
  expectBadOption,
  expectError,
  expectUnitRange,
  gridData,
} from './helpers.js';

/**
 * flatten → dense(5, softplus) → dense(3): smooth, so finite differences are meaningful (and
 * softplus is one of the activations tfjs differentiates twice correctly).
 */
function tinyNet(seed = 7, activation: 'softplus' | 'tanh' = 'softplus'): TfjsClassifier {
  const rng = new Rng(seed);
  const init = () => tfl.initializers.glorotNormal({ seed: rng.nextSeed() });
  const m = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [2, 2, 1] }),
      tfl.layers.dense({
        units: 5,
        activation,
        kernelInitializer: init(),
        biasInitializer: tfl.initializers.randomUniform({
          minval: -0.5,
          maxval: 0.5,
          seed: rng.nextSeed(),
        }),
      }),
      tfl.layers.dense({ units: 3, kernelInitializer: init() }),
    ],
  });
  return new TfjsClassifier(m);
}

describe('gradient matching objective', () => {
  const model = tinyNet();
  const pm = parameterModel(model, 'dense');
  const xt = tf.keep(tf.tensor(values(8, 3, 0.2, 0.8), [2, 2, 2, 1]));
  const yt = tf.keep(tf.tensor1d([2, 2], 'int32'));
  const targetGrad = parameterGradient(pm, xt, yt).map((g) => tf.keep(g));
  const xp = values(12, 5, 0.2, 0.8);
  const yp = tf.keep(tf.tensor1d([2, 2, 2], 'int32'));

  const loss = (v: number[]) =>
    tf.tidy(() => alignmentLoss(pm, tf.tensor(v, [3, 2, 2, 1]), yp, targetGrad).dataSync()[0]);

  it('its input gradient matches central finite differences', () => {
    const before = tf.memory().numTensors;
    const x = tf.tensor(xp, [3, 2, 2, 1]);
    const grad = tf.grad((z: tf.Tensor) => alignmentLoss(pm, z, yp, targetGrad))(x);
    const g = Array.from(grad.dataSync());
    tf.dispose([x, grad]);
    expect(tf.memory().numTensors).toBe(before);
    const h = 1e-3;
    const fd = xp.map((_, i) => {
      const up = [...xp];
      const down = [...xp];
      up[i] += h;
      down[i] -= h;
      return (loss(up) - loss(down)) / (2 * h);
    });
    const scale = Math.max(...fd.map(Math.abs));
    expect(scale).toBeGreaterThan(1e-2);
    for (let i = 0; i < g.length; i++)
      expect(Math.abs(g[i] - fd[i])).toBeLessThan(1e-3 + 0.02 * Math.abs(fd[i]));
  });

  it('through a convolutional model (params dense): directional derivatives match central differences', () => {
    const cnn = cnnModel();
    const cpm = parameterModel(cnn, 'dense');
    const ct = tf.tensor(values(2 * 64, 11, 0.1, 0.9), [2, 8, 8, 1]);
    const cy = tf.tensor1d([1, 1], 'int32');
    const tg = parameterGradient(cpm, ct, cy);
    const y = tf.tensor1d([1, 1, 1], 'int32');
    const x0 = values(3 * 64, 12, 0.1, 0.9);
    const f = (v: number[]) =>
      tf.tidy(() => alignmentLoss(cpm, tf.tensor(v, [3, 8, 8, 1]), y, tg).dataSync()[0]);
    const x = tf.tensor(x0, [3, 8, 8, 1]);
    const grad = tf.grad((z: tf.Tensor) => alignmentLoss(cpm, z, y, tg))(x);
    const g = Array.from(grad.dataSync());
    tf.dispose([ct, cy, x, grad]);
    for (const seed of [21, 22, 23]) {
      const dir = values(x0.length, seed, -1, 1);
      const h = 1e-3;
      const fd =
        (f(x0.map((v, i) => v + h * dir[i])) - f(x0.map((v, i) => v - h * dir[i]))) / (2 * h);
      const analytic = g.reduce((s, gi, i) => s + gi * dir[i], 0);
      expect(Math.abs(analytic - fd)).toBeLessThan(2e-3 + 0.03 * Math.abs(fd));
      expect(Math.abs(fd)).toBeGreaterThan(1e-3);
    }
    tf.dispose([y, ...tg]);
  });

  it('refuses activations tfjs cannot differentiate twice correctly (tanh)', async () => {
    await expectError(() => parameterModel(tinyNet(7, 'tanh'), 'dense'), 'UNSUPPORTED', 'tanh');
  });

  it('is 0 when the poisons are the targets with the intended label, and lies in [0, 2]', () => {
    const zero = tf.tidy(() => alignmentLoss(pm, xt, yt, targetGrad).dataSync()[0]);
    expect(zero).toBeCloseTo(0, 5);
    const l = loss(xp);
    expect(l).toBeGreaterThan(0);
    expect(l).toBeLessThanOrEqual(2);
  });
});

/** A few full-batch Adam steps, so the poisons' own loss is low and their gradients differ from the targets'. */
function train(model: TfjsClassifier, data: Dataset): void {
  const lm = model.layersModel!;
  const optimizer = tf.train.adam(0.05);
  const vars = lm.trainableWeights.map((w) => w.read() as tf.Variable);
  const x = tf.tensor(data.x, data.shape);
  const y = tf.tensor1d(data.labels, 'int32');
  for (let t = 0; t < 80; t++) {
    optimizer.minimize(() => trainingLoss(lm.apply(x) as tf.Tensor2D, y), false, vars);
  }
  tf.dispose([x, y]);
  optimizer.dispose();
}

describe('gradient matching attack', () => {
  const model = tinyNet(3);
  const data = syntheticDataset({ shape: [2, 2, 1], numClasses: 3, n: 60, seed: 2 });
  train(model, data);
  const test = syntheticDataset({ shape: [2, 2, 1], numClasses: 3, n: 12, seed: 2, split: 'test' });
  const targets = Array.from(test.labels.keys())
    .filter((i) => test.labels[i] !== 0)
    .slice(0, 2);

  it('lowers the alignment loss within eps and [0, 1], labels kept, and is seeded', async () => {
    tf.tidy(() => {
      model.logits(tf.zeros([1, 2, 2, 1]));
    });
    const before = tf.memory().numTensors;
    const o = {
      rate: 0.1,
      target: 0,
      targetImages: targets,
      eps: 0.1,
      steps: 20,
      restarts: 2,
      seed: 1,
    };
    const r = await gradientMatching(data, o, { model, test });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.poisonedIndices).toHaveLength(6);
    for (const i of r.poisonedIndices) expect(data.labels[i]).toBe(0);
    expect(r.dataset.labels).toEqual(data.labels);
    expect(changedImages(data, r.dataset)).toEqual(r.poisonedIndices);
    expectUnitRange(r.dataset.x);
    for (const i of r.poisonedIndices) {
      const a = example(data, i);
      const b = example(r.dataset, i);
      for (let j = 0; j < a.length; j++)
        expect(Math.abs(a[j] - b[j])).toBeLessThanOrEqual(0.1 + 1e-6);
    }
    const s = r.summary!;
    // Measured: 0.47 → 0.25.
    expect(s.alignmentLoss).toBeLessThan(0.75 * s.alignmentLossClean);
    expect(r.manifest).toMatchObject({
      targetImages: targets,
      targetClass: 0,
      labelsChanged: false,
    });
    const again = await gradientMatching(data, o, { model, test });
    expect(again.dataset.x).toEqual(r.dataset.x);
    const other = await gradientMatching(
      data,
      { ...o, seed: 2, steps: 2, restarts: 1 },
      { model, test },
    );
    expect(other.poisonedIndices).not.toEqual(r.poisonedIndices);
  });

  it('runs through a convolutional model on params dense, refuses all there', async () => {
    const cnn = cnnModel();
    const grid = gridData(30, 3, 1);
    const gridTest = gridData(9, 3, 1, 'test');
    const t = Array.from(gridTest.labels.keys()).find((i) => gridTest.labels[i] !== 1)!;
    tf.tidy(() => {
      cnn.logits(tf.zeros([1, 8, 8, 1]));
    });
    const before = tf.memory().numTensors;
    const o = { rate: 0.1, target: 1, targetImages: [t], steps: 2, restarts: 1 };
    const r = await gradientMatching(grid, o, { model: cnn, test: gridTest });
    expect(tf.memory().numTensors).toBe(before);
    expect(Number.isFinite(r.summary!.alignmentLoss)).toBe(true);
    expect(changedImages(grid, r.dataset)).toEqual(r.poisonedIndices);
    await expectError(
      () => gradientMatching(grid, { ...o, params: 'all' }, { model: cnn, test: gridTest }),
      'UNSUPPORTED',
      'conv1',
    );
  });

  it('refuses bad options', async () => {
    const o = { target: 0, targetImages: targets };
    await expectBadOption(() => gradientMatching(data, { ...o, rate: 2 }, { model, test }), 'rate');
    await expectBadOption(
      () => gradientMatching(data, { ...o, eps: -0.1 }, { model, test }),
      'eps',
    );
    await expectBadOption(
      () => gradientMatching(data, { ...o, target: 3 }, { model, test }),
      'target',
    );
    await expectBadOption(
      () => gradientMatching(data, { target: 0 } as never, { model, test }),
      'targetImages',
    );
    await expectBadOption(
      () => gradientMatching(data, { ...o, targetImages: [99] }, { model, test }),
      'targetImages',
    );
    await expectBadOption(() => gradientMatching(data, o, { test }), 'model');
  });
});
