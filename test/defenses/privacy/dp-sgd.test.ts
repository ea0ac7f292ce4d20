/**
 * DP-SGD: with σ = 0 and a huge C a step is plain SGD on the mean gradient; the noise has the
 * scale σC / expected batch and comes from the seed; Poisson sampling is reproducible with the
 * right mean, variance and per-example rate; trainModel with the DP step counts its steps for the
 * accountant, is reproducible and leaks nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { syntheticDataset } from '../../../src/data/index.js';
import {
  createDpSgd,
  epsilonFor,
  poissonSample,
  privateGradients,
} from '../../../src/defenses/privacy/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { ParryError } from '../../../src/errors.js';
import { DropoutSeeder } from '../../../src/models/dropout.js';
import { buildArchitecture } from '../../../src/models/index.js';
import { crossEntropy } from '../../../src/objectives/losses.js';
import { trainModel } from '../../../src/train/loop.js';

const shape = [6, 6, 1];
const mlp = (seed = 1) => buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed });
const weightsOf = (m: ReturnType<typeof mlp>) =>
  m.trainableWeights.map((w) => Array.from(w.read().dataSync()));

function batch(m: number, seed: number) {
  const x = tf.randomUniform([m, ...shape], 0, 1, 'float32', seed);
  const y = tf.tensor1d(
    Array.from({ length: m }, (_, i) => (i * 7) % 3),
    'int32',
  );
  return { x, y };
}

describe('privateGradients', () => {
  it('with σ = 0 and a huge C, a step is a plain SGD step on the mean gradient', () => {
    const { x, y } = batch(9, 3);
    for (const clipping of ['fast', 'reference'] as const) {
      const dp = mlp();
      const plain = mlp();
      const opts = {
        noiseMultiplier: 0,
        maxGradNorm: 1e9,
        expectedBatchSize: 9,
        clipping,
        microbatch: 4,
      };
      const r = privateGradients(dp, x, y, opts, new Rng(1));
      tf.train.sgd(0.5).applyGradients(r.grads);
      const vars = plain.trainableWeights.map((w) => w.read() as tf.Variable);
      const loss = tf.train
        .sgd(0.5)
        .minimize(
          () =>
            tf.mean(
              crossEntropy(plain.apply(x, { training: true }) as tf.Tensor2D, y),
            ) as tf.Scalar,
          true,
          vars,
        );
      const a = weightsOf(dp);
      const b = weightsOf(plain);
      for (const [i, w] of a.entries()) {
        for (const [j, v] of w.entries()) expect(Math.abs(v - b[i][j])).toBeLessThan(1e-6);
      }
      expect(r.lossSum.dataSync()[0] / 9).toBeCloseTo(loss!.dataSync()[0], 5);
      expect(r.norms.shape).toEqual([9]);
      tf.dispose([...Object.values(r.grads), r.norms, r.lossSum, r.correct, loss!]);
      dp.dispose();
      plain.dispose();
    }
    tf.dispose([x, y]);
  });

  it('adds N(0, σ²C²) per coordinate, divided by the expected batch size, from the seed', () => {
    const model = mlp();
    const empty = { x: tf.zeros([0, ...shape]), y: tf.zeros([0], 'int32') as tf.Tensor1D };
    const opts = { noiseMultiplier: 2, maxGradNorm: 0.5, expectedBatchSize: 10 };
    // An empty Poisson batch still takes a step: pure noise of std σC/L = 0.1.
    const draw = (seed: number) => {
      const r = privateGradients(model, empty.x, empty.y, opts, new Rng(seed));
      const values = Object.values(r.grads).flatMap((g) => Array.from(g.dataSync()));
      tf.dispose([...Object.values(r.grads), r.norms, r.lossSum, r.correct]);
      return values;
    };
    const v = draw(5);
    const n = v.length;
    const mean = v.reduce((s, u) => s + u, 0) / n;
    const std = Math.sqrt(v.reduce((s, u) => s + (u - mean) ** 2, 0) / n);
    expect(n).toBe(model.countParams());
    expect(Math.abs(mean)).toBeLessThan((5 * 0.1) / Math.sqrt(n));
    // The sample std of n normals has sd ≈ σ/√(2n): 5 of them.
    expect(Math.abs(std - 0.1)).toBeLessThan((5 * 0.1) / Math.sqrt(2 * n));
    expect(draw(5)).toEqual(v);
    expect(draw(6)).not.toEqual(v);
    tf.dispose([empty.x, empty.y]);
    model.dispose();
  });

  it("draws Dropout masks from its rng, per microbatch, and puts the layers' seeds back", () => {
    const model = buildArchitecture('mlp', {
      inputShape: shape,
      numClasses: 3,
      dropout: 0.5,
      seed: 1,
    });
    const layers = model.layers.filter((l) => l.getClassName() === 'Dropout');
    const seeds = () => layers.map((l) => (l as unknown as { seed?: number }).seed);
    const before = seeds();
    const { x, y } = batch(6, 4);
    const grads = (seed: number, clipping: 'fast' | 'reference') => {
      const opts = {
        noiseMultiplier: 0,
        maxGradNorm: 1e9,
        expectedBatchSize: 6,
        clipping,
        microbatch: 3,
      };
      const r = privateGradients(model, x, y, opts, new Rng(seed));
      const values = Object.values(r.grads).map((g) => Array.from(g.dataSync()));
      tf.dispose([...Object.values(r.grads), r.norms, r.lossSum, r.correct]);
      return values;
    };
    for (const clipping of ['fast', 'reference'] as const) {
      const a = grads(1, clipping);
      expect(grads(1, clipping)).toEqual(a);
      expect(grads(2, clipping)).not.toEqual(a);
      expect(seeds()).toEqual(before);
    }
    // Seeded layers (as the training loop leaves them) draw one mask per input shape: two
    // microbatches of the same examples must still get different masks.
    new DropoutSeeder(model.layers).seed(5);
    const twice = (() => {
      const same = tf.concat([tf.slice(x, 0, 3), tf.slice(x, 0, 3)]);
      const labels = tf.concat([tf.slice(y, 0, 3), tf.slice(y, 0, 3)]) as tf.Tensor1D;
      const opts = { noiseMultiplier: 0, maxGradNorm: 1e9, expectedBatchSize: 1, microbatch: 3 };
      const r = privateGradients(model, same, labels, opts, new Rng(3));
      const norms = Array.from(r.norms.dataSync());
      tf.dispose([same, labels, ...Object.values(r.grads), r.norms, r.lossSum, r.correct]);
      return norms;
    })();
    expect(twice.slice(0, 3)).not.toEqual(twice.slice(3));
    tf.dispose([x, y]);
    model.dispose();
  });

  it('leaks no tensors over repeated steps', () => {
    const model = mlp();
    const { x, y } = batch(5, 2);
    const rng = new Rng(3);
    const step = () => {
      const r = privateGradients(
        model,
        x,
        y,
        { noiseMultiplier: 1, maxGradNorm: 1, expectedBatchSize: 5, microbatch: 2 },
        rng,
      );
      tf.dispose([...Object.values(r.grads), r.norms, r.lossSum, r.correct]);
    };
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('poissonSample', () => {
  it('includes each example independently with probability q, reproducibly from the seed', () => {
    const [n, q, draws] = [1000, 0.05, 2000];
    const rng = new Rng(11);
    const sizes: number[] = [];
    const hits = new Int32Array(n);
    for (let t = 0; t < draws; t++) {
      const s = poissonSample(n, q, rng);
      for (let i = 1; i < s.length; i++) expect(s[i]).toBeGreaterThan(s[i - 1]);
      if (s.length > 0) expect(s[0] >= 0 && s[s.length - 1] < n).toBe(true);
      for (const i of s) hits[i]++;
      sizes.push(s.length);
    }
    // Batch size ~ Binomial(n, q): mean 50, variance 47.5.
    const mean = sizes.reduce((a, b) => a + b, 0) / draws;
    const variance = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws - 1);
    expect(Math.abs(mean - n * q)).toBeLessThan(5 * Math.sqrt((n * q * (1 - q)) / draws));
    expect(variance / (n * q * (1 - q))).toBeGreaterThan(0.85);
    expect(variance / (n * q * (1 - q))).toBeLessThan(1.15);
    // Every example's inclusion count ~ Binomial(draws, q): mean 100, sd 9.7; none beyond 5 sd.
    const sd = Math.sqrt(draws * q * (1 - q));
    for (const h of hits) expect(Math.abs(h - draws * q)).toBeLessThan(5 * sd);
    const a = new Rng(4);
    const b = new Rng(4);
    for (let t = 0; t < 5; t++) expect(poissonSample(n, q, a)).toEqual(poissonSample(n, q, b));
    expect(Array.from(poissonSample(7, 1, a))).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(() => poissonSample(7, 0, a)).toThrow(/q must be in \(0, 1\]/);
  });
});

describe('createDpSgd in trainModel', () => {
  const data = syntheticDataset({ shape, numClasses: 3, n: 96, seed: 2 });
  const cfg = { epochs: 2, batchSize: 16, optimizer: 'sgd' as const, lr: 0.5, seed: 3 };

  async function run(seed: number) {
    const model = mlp();
    const dp = createDpSgd(
      model,
      { noiseMultiplier: 1.1, maxGradNorm: 1, delta: 1e-3, seed },
      {
        examples: 96,
        batchSize: 16,
      },
    );
    const result = await trainModel(model, data, cfg, { gradientStep: dp.step });
    const out = { result, record: dp.record(), weights: weightsOf(model) };
    model.dispose();
    return out;
  }

  it('feeds the accountant the steps taken, records ε, and is reproducible from the seed', async () => {
    const a = await run(7);
    // 96 / 16 = 6 steps an epoch.
    expect(a.record.steps).toBe(12);
    expect(a.record.sample_rate).toBeCloseTo(1 / 6, 15);
    const expected = epsilonFor({
      noiseMultiplier: 1.1,
      sampleRate: 1 / 6,
      steps: 12,
      delta: 1e-3,
    });
    expect(a.record.epsilon).toBe(expected.epsilon);
    expect(a.record.epsilon_balle).toBe(expected.epsilonBalle);
    expect(a.record).toMatchObject({
      noise_multiplier: 1.1,
      max_grad_norm: 1,
      delta: 1e-3,
      clipping: 'fast',
    });
    expect(a.result.epochs).toHaveLength(2);
    for (const e of a.result.epochs) expect(Number.isFinite(e.loss)).toBe(true);
    const b = await run(7);
    expect(b.weights).toEqual(a.weights);
    const c = await run(8);
    expect(c.weights).not.toEqual(a.weights);
  });

  it('leaks no tensors over a training run', async () => {
    await run(1);
    const before = tf.memory().numTensors;
    await run(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an expected batch larger than the data and a gradientStep with a custom loss', async () => {
    const model = mlp();
    expect(() =>
      createDpSgd(model, { noiseMultiplier: 1, maxGradNorm: 1 }, { examples: 10, batchSize: 11 }),
    ).toThrow(/batchSize .* must be <= the 10 training examples, got 11/);
    expect(() =>
      createDpSgd(model, { noiseMultiplier: 0, maxGradNorm: 1 }, { examples: 10, batchSize: 2 }),
    ).toThrow(ParryError);
    const dp = createDpSgd(
      model,
      { noiseMultiplier: 1, maxGradNorm: 1 },
      { examples: 96, batchSize: 16 },
    );
    await expect(
      trainModel(model, data, cfg, {
        gradientStep: dp.step,
        lossFn: (net, x) => {
          const logits = net.apply(x) as tf.Tensor2D;
          return { loss: tf.sum(logits, 1) as tf.Tensor1D, logits };
        },
      }),
    ).rejects.toThrow(/gradientStep/);
    model.dispose();
  });
});
