import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { syntheticDataset } from '../../src/data/index.js';
import { WorkerPool } from '../../src/engine/pool.js';
import { ParryError } from '../../src/errors.js';
import { buildArchitecture } from '../../src/models/index.js';
import {
  type LossFn,
  learningRateAt,
  parseConfig,
  standardLoss,
  trainModel,
} from '../../src/train/loop.js';

const data = syntheticDataset({ shape: [6, 6, 1], numClasses: 3, n: 240, seed: 9 });

async function train(seed: number, extra: Record<string, number> = {}) {
  const model = buildArchitecture('mlp', { inputShape: [6, 6, 1], numClasses: 3, seed: 1 });
  const result = await trainModel(model, data, { epochs: 3, batchSize: 16, seed, ...extra });
  const norm = tf.tidy(
    () =>
      tf
        .addN(
          model.trainableWeights
            .filter((w) => /kernel/.test(w.name))
            .map((w) => tf.sum(tf.square(w.read()))),
        )
        .dataSync()[0],
  );
  const weights = model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
  model.dispose();
  return { result, norm, weights };
}

describe('trainModel', () => {
  it('learns, and is reproducible from its seed', async () => {
    const a = await train(4);
    const b = await train(4);
    const c = await train(5);
    expect(a.result.epochs.map((e) => e.loss)).toEqual(b.result.epochs.map((e) => e.loss));
    expect(a.weights).toEqual(b.weights);
    expect(c.weights).not.toEqual(a.weights); // another shuffling order
    const [first, , last] = a.result.epochs;
    expect(last.loss).toBeLessThan(first.loss);
    expect(last.accuracy).toBeGreaterThan(0.9);
  });

  it('Gaussian augmentation is seeded: the same seed repeats it, and it changes training', async () => {
    const plain = await train(4);
    const noisyA = await train(4, { noiseSigma: 0.25 });
    const noisyB = await train(4, { noiseSigma: 0.25 });
    expect(noisyA.weights).toEqual(noisyB.weights);
    expect(noisyA.weights).not.toEqual(plain.weights);
    // Noise makes the task harder: the training loss (on noisy inputs) ends higher.
    expect(noisyA.result.epochs[2].loss).toBeGreaterThan(plain.result.epochs[2].loss);
  });

  it('weight decay shrinks the kernels', async () => {
    const plain = await train(4);
    const decayed = await train(4, { weightDecay: 0.05 });
    expect(decayed.norm).toBeLessThan(0.9 * plain.norm);
  });

  it('rejects bad configs with the path of the bad field', () => {
    expect(() => parseConfig({ epochs: 0 })).toThrow(ParryError);
    expect(() => parseConfig({ epochs: 0 })).toThrow(/epochs/);
    expect(() => parseConfig({ lr: -1 })).toThrow(/lr/);
    expect(() => parseConfig({ bogus: 1 } as never)).toThrow(/bogus|unrecognized/i);
  });

  it('data-parallel steps over two workers match in-process training', async () => {
    const pool = new WorkerPool({ workers: 2 });
    try {
      for (const arch of ['mlp', 'cnn-small']) {
        const shape = [6, 6, 1];
        const build = () => buildArchitecture(arch, { inputShape: shape, numClasses: 3, seed: 1 });
        const cfg = { epochs: 2, batchSize: 16, seed: 4, weightDecay: 0.01, labelSmoothing: 0.1 };
        const local = build();
        const parallel = build();
        const a = await trainModel(local, data, cfg);
        const before = tf.memory().numTensors;
        const b = await trainModel(parallel, data, cfg, { pool });
        expect(tf.memory().numTensors).toBe(before);
        a.epochs.forEach((e, i) => {
          expect(b.epochs[i].loss).toBeCloseTo(e.loss, 4);
          expect(b.epochs[i].accuracy).toBe(e.accuracy);
        });
        local.trainableWeights.forEach((w, i) => {
          const x = w.read().dataSync();
          const y = parallel.trainableWeights[i].read().dataSync();
          let worst = 0;
          for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - y[j]));
          expect(worst, `${arch} ${w.name}`).toBeLessThan(1e-4);
        });
        local.dispose();
        parallel.dispose();
      }
    } finally {
      await pool.close();
    }
  });

  it('dropout masks are seeded: new masks every step, the same run from the same seed', async () => {
    // Each step's mask on an all-ones probe, read through the model's Dropout layer.
    const run = async (seed: number) => {
      const model = buildArchitecture('mlp', {
        inputShape: [6, 6, 1],
        numClasses: 3,
        seed: 1,
        dropout: 0.5,
      });
      const drop = model.layers.find((l) => l.getClassName() === 'Dropout')!;
      const masks: string[] = [];
      const base = standardLoss(0);
      const lossFn: LossFn = (net, x, y, progress) => {
        const probe = drop.apply(tf.ones([1, 64]), { training: true }) as tf.Tensor;
        masks.push(Array.from(probe.dataSync(), (v) => (v > 0 ? 1 : 0)).join(''));
        return base(net, x, y, progress);
      };
      const small = syntheticDataset({ shape: [6, 6, 1], numClasses: 3, n: 64, seed: 9 });
      await trainModel(model, small, { epochs: 1, batchSize: 16, seed }, { lossFn });
      const weights = model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
      const topology = model.toJSON(null, false) as {
        config: { layers: { class_name: string; config: { seed?: number | null } }[] };
      };
      const dropoutSeeds = topology.config.layers
        .filter((l) => l.class_name === 'Dropout')
        .map((l) => l.config.seed);
      model.dispose();
      return { masks, weights, dropoutSeeds };
    };
    const a = await run(4);
    const b = await run(4);
    const c = await run(5);
    expect(a.masks).toHaveLength(4);
    expect(new Set(a.masks).size).toBe(4); // a fresh mask at every step
    expect(b.masks).toEqual(a.masks);
    expect(b.weights).toEqual(a.weights);
    expect(c.masks).not.toEqual(a.masks);
    // The seeds parry set are gone from the saved topology.
    expect(a.dropoutSeeds).toEqual([null, null, null]);
  });

  it('dropout over two workers is reproducible from the seed', async () => {
    const pool = new WorkerPool({ workers: 2 });
    try {
      const run = async (seed: number) => {
        const model = buildArchitecture('mlp', {
          inputShape: [6, 6, 1],
          numClasses: 3,
          seed: 1,
          dropout: 0.5,
        });
        await trainModel(model, data, { epochs: 1, batchSize: 32, seed }, { pool });
        const w = model.trainableWeights.map((v) => Array.from(v.read().dataSync()));
        model.dispose();
        return w;
      };
      const a = await run(4);
      expect(await run(4)).toEqual(a);
      expect(await run(5)).not.toEqual(a);
    } finally {
      await pool.close();
    }
  });

  it('stops when aborted', async () => {
    const model = buildArchitecture('mlp', { inputShape: [6, 6, 1], numClasses: 3, seed: 1 });
    const ctrl = new AbortController();
    ctrl.abort();
    await expect(trainModel(model, data, { epochs: 1 }, { signal: ctrl.signal })).rejects.toThrow(
      /aborted/,
    );
    model.dispose();
  });

  it('the cyclic schedule is a triangle peaking at 2/5 of the steps and ending at 0', () => {
    const cfg = { lr: 0.2, lrSchedule: 'cyclic' as const };
    expect(learningRateAt(cfg, 3, 10)).toBeCloseTo(0.2, 12); // t = 0.4: the peak
    expect(learningRateAt(cfg, 0, 10)).toBeCloseTo(0.05, 12); // t = 0.1 on the way up
    expect(learningRateAt(cfg, 6, 10)).toBeCloseTo(0.2 * (0.3 / 0.6), 12); // t = 0.7
    expect(learningRateAt(cfg, 9, 10)).toBe(0);
    expect(learningRateAt({ lr: 0.2, lrSchedule: 'constant' }, 9, 10)).toBe(0.2);
  });

  it('the cyclic schedule reaches every optimizer, and leaks nothing', async () => {
    // One step is the run's last: its cyclic rate is 0, so the weights must not move.
    const one = syntheticDataset({ shape: [6, 6, 1], numClasses: 3, n: 16, seed: 2 });
    for (const optimizer of ['adam', 'sgd', 'momentum'] as const) {
      const model = buildArchitecture('mlp', { inputShape: [6, 6, 1], numClasses: 3, seed: 1 });
      const w0 = model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
      const cfg = { epochs: 1, batchSize: 16, lr: 0.1, optimizer };
      const before = tf.memory().numTensors;
      await trainModel(model, one, { ...cfg, lrSchedule: 'cyclic' });
      expect(tf.memory().numTensors, optimizer).toBe(before);
      const w1 = model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
      expect(w1, optimizer).toEqual(w0);
      await trainModel(model, one, cfg);
      const w2 = model.trainableWeights.map((w) => Array.from(w.read().dataSync()));
      expect(w2, optimizer).not.toEqual(w0);
      model.dispose();
    }
  });
});
