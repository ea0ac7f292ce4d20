/**
 * What robust training does, measured: on a 2-D problem adversarial training moves the decision
 * boundary away from the training points (the margin, found by a radial search, grows) while
 * more plain training leaves it where it is; and every method lowers its own training loss on
 * the bundled Fashion-MNIST subset within a few steps, without leaking tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { type Dataset, loadDataset, takeFirst } from '../../../src/data/index.js';
import {
  createFastTraining,
  createInputGradientRegularizer,
  createJacobianRegularizer,
  createMart,
  createPgdTraining,
  createTrades,
  type RobustTraining,
} from '../../../src/defenses/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { buildArchitecture } from '../../../src/models/index.js';
import { trainModel } from '../../../src/train/loop.js';

/** Two classes in boxes x ∈ [0.2, 0.4] and [0.6, 0.8], y ∈ [0.2, 0.8]: the best margin is 0.1. */
function boxes(n: number, seed: number): Dataset {
  const rng = new Rng(seed);
  const x = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    x[2 * i] = (labels[i] === 0 ? 0 : 0.9) + 0.1 * rng.next();
    x[2 * i + 1] = 0.1 + 0.8 * rng.next();
  }
  return { x, labels, shape: [n, 1, 1, 2], numClasses: 2, name: 'boxes' };
}

function mlp2d(): tfl.LayersModel {
  const init = (seed: number) => tfl.initializers.glorotUniform({ seed });
  return tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [1, 1, 2] }),
      tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init(1) }),
      tfl.layers.dense({ units: 32, activation: 'relu', kernelInitializer: init(2) }),
      tfl.layers.dense({ units: 2, kernelInitializer: init(3) }),
    ],
  });
}

/**
 * Euclidean distance from each point to the nearest point the model labels differently (its
 * prediction at the point itself is the reference), by a radial search: `directions` rays, radii
 * on a grid of step `dr` up to `rMax` (rMax when nothing flips). Exact up to the grid.
 */
function margins(model: tfl.LayersModel, data: Dataset, rMax = 0.5, dr = 0.005, directions = 72) {
  const n = data.shape[0];
  const radii = Math.round(rMax / dr);
  const out = new Float64Array(n);
  const probe = new Float32Array(directions * radii * 2);
  for (let i = 0; i < n; i++) {
    const [px, py] = [data.x[2 * i], data.x[2 * i + 1]];
    for (let d = 0; d < directions; d++) {
      const a = (2 * Math.PI * d) / directions;
      for (let r = 0; r < radii; r++) {
        const k = 2 * (d * radii + r);
        probe[k] = px + (r + 1) * dr * Math.cos(a);
        probe[k + 1] = py + (r + 1) * dr * Math.sin(a);
      }
    }
    const [own, preds] = tf.tidy(() => {
      const at = tf.argMax(model.predict(tf.tensor4d([px, py], [1, 1, 1, 2])) as tf.Tensor, 1);
      const p = tf.argMax(
        model.predict(tf.tensor4d(probe, [directions * radii, 1, 1, 2])) as tf.Tensor,
        1,
      );
      return [at.dataSync()[0], p.dataSync()];
    });
    let best = rMax;
    for (let d = 0; d < directions; d++) {
      for (let r = 0; r < radii; r++) {
        if (preds[d * radii + r] !== own) {
          best = Math.min(best, (r + 1) * dr);
          break;
        }
      }
    }
    out[i] = best;
  }
  return out;
}

function accuracy(model: tfl.LayersModel, data: Dataset): number {
  return tf.tidy(() => {
    const pred = tf.argMax(model.predict(tf.tensor(data.x, data.shape)) as tf.Tensor, 1);
    const right = tf.equal(pred, tf.tensor1d(data.labels, 'int32'));
    return tf.mean(tf.cast(right, 'float32')).dataSync()[0];
  });
}

const mean = (v: ArrayLike<number>) => Array.from(v).reduce((a, b) => a + b, 0) / v.length;

describe('adversarial training on a 2-D problem', () => {
  it('moves the decision boundary away from the training points; plain training does not', async () => {
    const data = boxes(60, 3);
    const cfg = { batchSize: 20, lr: 0.01, seed: 1 };
    // A plain model that already separates the data, then 30 more epochs of each kind of training.
    const more = { ...cfg, epochs: 40, optimizer: 'sgd' as const, lr: 0.5 };
    const base = mlp2d();
    await trainModel(base, data, { ...cfg, epochs: 150 });
    const start = margins(base, data);
    const weights = base.getWeights().map((w) => w.clone());
    const plain = mlp2d();
    plain.setWeights(weights);
    await trainModel(plain, data, more);
    const robust = mlp2d();
    robust.setWeights(weights);
    const t = createPgdTraining({ eps: 0.3, norm: 'l2', steps: 7, seed: 1 });
    await trainModel(robust, data, more, { lossFn: t.lossFn, prepare: t.prepare });
    const after = { plain: margins(plain, data), robust: margins(robust, data) };
    // Margins are to each model's own prediction: first check every point is classified right.
    for (const m of [base, plain, robust]) expect(accuracy(m, data)).toBe(1);
    const min = (v: Float64Array) => Math.min(...v);
    // Plain SGD on separated data: the loss is ~0, so is its gradient; the boundary stays.
    expect(Math.abs(min(after.plain) - min(start))).toBeLessThanOrEqual(0.01);
    expect(Math.abs(mean(after.plain) - mean(start))).toBeLessThan(0.005);
    // PGD-AT at radius 0.3 pushes the boundary out (the best possible margin here is 0.4).
    expect(min(after.robust)).toBeGreaterThan(min(start) + 0.07);
    expect(mean(after.robust)).toBeGreaterThan(mean(start) + 0.01);
    tf.dispose(weights);
    for (const m of [base, plain, robust]) m.dispose();
  }, 120_000);
});

describe('every robust-training method on the bundled subset', () => {
  const train = takeFirst(loadDataset('fashion-mnist-subset', 'train'), 256);
  const fixed = takeFirst(train, 128);
  const threat = { eps: 0.1, steps: 3, seed: 7 };
  const methods: [string, () => RobustTraining][] = [
    ['pgd-at', () => createPgdTraining(threat)],
    ['fast-at', () => createFastTraining({ eps: 0.1, seed: 7 })],
    ['trades', () => createTrades({ ...threat, beta: 6 })],
    ['mart', () => createMart({ ...threat, beta: 6 })],
    ['grad-reg', () => createInputGradientRegularizer({ lambda: 1 })],
    ['jacobian-reg', () => createJacobianRegularizer({ lambda: 0.1, seed: 7 })],
  ];

  /** The method's own mean loss on a fixed batch, its attack drawn from a fresh seeded copy. */
  function methodLoss(model: tfl.LayersModel, make: () => RobustTraining): number {
    const t = make();
    return tf.tidy(() => {
      const x = tf.tensor(fixed.x, fixed.shape);
      const y = tf.tensor1d(fixed.labels, 'int32');
      const progress = { step: 0, totalSteps: 1 };
      const prepared = t.prepare?.(model, x, y, progress);
      return tf.mean(t.lossFn(model, x, y, progress, prepared).loss).dataSync()[0];
    });
  }

  it.each(methods)(
    '%s lowers its training loss in 12 steps and leaks nothing over an epoch',
    async (_name, make) => {
      const model = buildArchitecture('mlp', { inputShape: [28, 28, 1], numClasses: 10, seed: 3 });
      const before = methodLoss(model, make);
      const t = make();
      const hooks = { lossFn: t.lossFn, prepare: t.prepare };
      await trainModel(model, train, { epochs: 1, batchSize: 64, seed: 1 }, hooks);
      const tensors = tf.memory().numTensors;
      await trainModel(model, train, { epochs: 2, batchSize: 64, seed: 2 }, hooks);
      expect(tf.memory().numTensors).toBe(tensors);
      const after = methodLoss(model, make);
      expect(after).toBeLessThan(0.8 * before);
      model.dispose();
    },
    60_000,
  );
});
