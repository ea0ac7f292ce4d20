/**
 * Robust training across the worker pool: each worker rebuilds the method's loss from a plain
 * spec. A deterministic method (input-gradient penalty) must give the in-process weights; the
 * attack-based ones must be reproducible from their seed, count the attack's gradient
 * evaluations in the caller, raise robust accuracy like in-process training and leak nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgd } from '../../../src/attacks/evasion/pgd.js';
import { syntheticDataset } from '../../../src/data/index.js';
import {
  createInputGradientRegularizer,
  createPgdTraining,
  createSchedule,
  createTrades,
} from '../../../src/defenses/index.js';
import { createShardTraining, parallelTraining } from '../../../src/defenses/training/shard.js';
import { WorkerPool } from '../../../src/engine/pool.js';
import { buildArchitecture, TfjsClassifier } from '../../../src/models/index.js';
import { countCorrect } from '../../../src/objectives/losses.js';
import { trainModel } from '../../../src/train/loop.js';

const shape = [8, 8, 1];
const train = syntheticDataset({ shape, numClasses: 3, n: 300, seed: 4, noise: 0.15 });
const test = syntheticDataset({
  shape,
  numClasses: 3,
  n: 150,
  seed: 4,
  noise: 0.15,
  split: 'test',
});
const eps = 0.25;

function weightsOf(model: { trainableWeights: { read(): tf.Tensor }[] }): Float32Array[] {
  return model.trainableWeights.map((w) => w.read().dataSync() as Float32Array);
}

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let worst = 0;
  a.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) worst = Math.max(worst, Math.abs(x[j] - b[i][j]));
  });
  return worst;
}

async function robustAccuracy(model: TfjsClassifier): Promise<number> {
  const x = tf.tensor(test.x, test.shape);
  const y = tf.tensor1d(test.labels, 'int32');
  const { xAdv } = await pgd(model, x, y, { eps, steps: 20, seed: 3 });
  const r = tf.tidy(() => countCorrect(model.logits(xAdv), y));
  const out = (await r.data())[0] / test.shape[0];
  tf.dispose([x, y, xAdv, r]);
  return out;
}

describe('robust training over the worker pool', () => {
  let pool: WorkerPool;
  beforeAll(() => {
    pool = new WorkerPool({ workers: 2 });
  });
  afterAll(async () => {
    await pool.close();
  });

  it('a deterministic loss (input-gradient penalty) gives the in-process weights', async () => {
    const cfg = { epochs: 2, batchSize: 30, seed: 2 };
    const build = () => buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 1 });
    const local = build();
    const parallel = build();
    const a = createInputGradientRegularizer({ lambda: 0.5 });
    const ra = await trainModel(local, train, cfg, { lossFn: a.lossFn });
    const b = createInputGradientRegularizer({ lambda: 0.5 });
    const before = tf.memory().numTensors;
    const rb = await trainModel(parallel, train, cfg, {
      pool,
      lossFn: b.lossFn,
      parallelLoss: parallelTraining('grad-reg', b.config, b.cost),
    });
    expect(tf.memory().numTensors).toBe(before);
    ra.epochs.forEach((e, i) => {
      expect(rb.epochs[i].loss).toBeCloseTo(e.loss, 4);
    });
    expect(maxAbsDiff(weightsOf(local), weightsOf(parallel))).toBeLessThan(1e-4);
    // The penalty's cost is counted in the caller from what the workers report.
    expect(b.cost.perExample()).toBeCloseTo(a.cost.perExample(), 10);
    expect(b.cost.perExample()).toBeGreaterThan(0);
    local.dispose();
    parallel.dispose();
  }, 60_000);

  it('PGD-AT is reproducible from its seed, counts K + 1 gradients per example and raises robust accuracy', async () => {
    const run = async (defended: boolean, seed: number) => {
      const model = buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 2 });
      const t = createPgdTraining({ eps, steps: 5, seed });
      await trainModel(
        model,
        train,
        { epochs: 8, batchSize: 50, seed: 1 },
        defended
          ? {
              pool,
              lossFn: t.lossFn,
              prepare: t.prepare,
              parallelLoss: parallelTraining('pgd-at', t.config, t.cost),
            }
          : { pool },
      );
      const classifier = new TfjsClassifier(model);
      const weights = weightsOf(model);
      const robust = await robustAccuracy(classifier);
      classifier.dispose();
      return { robust, weights, cost: t.cost.perExample() };
    };
    const plain = await run(false, 1);
    const a = await run(true, 1);
    const b = await run(true, 1);
    const c = await run(true, 2);
    expect(maxAbsDiff(a.weights, b.weights)).toBe(0);
    expect(maxAbsDiff(a.weights, c.weights)).toBeGreaterThan(0); // other attack starts
    expect(a.cost).toBe(6);
    expect(a.robust).toBeGreaterThan(plain.robust + 0.3);
  }, 120_000);

  it('TRADES follows the caller-side schedule in every shard and leaks no tensors', async () => {
    const model = buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 2 });
    const small = syntheticDataset({ shape, numClasses: 3, n: 60, seed: 5 });
    // Linear schedule: attack steps ramp with eps (settingFor scales K), so the counted cost
    // is below the constant schedule's K + 2 (K attack steps, backward through clean and adv).
    const schedule = createSchedule({ kind: 'linear', eps, steps: 4 });
    const t = createTrades({ eps, steps: 4, beta: 1 }, schedule.settingAt);
    const hooks = {
      pool,
      lossFn: t.lossFn,
      prepare: t.prepare,
      parallelLoss: parallelTraining('trades', t.config, t.cost, schedule.settingAt),
    };
    await trainModel(model, small, { epochs: 1, batchSize: 20 }, hooks);
    const before = tf.memory().numTensors;
    const r = await trainModel(model, small, { epochs: 2, batchSize: 20 }, hooks);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.epochs.every((e) => Number.isFinite(e.loss))).toBe(true);
    const constant = createTrades({ eps, steps: 4, beta: 1 });
    const hooksConstant = {
      pool,
      lossFn: constant.lossFn,
      prepare: constant.prepare,
      parallelLoss: parallelTraining('trades', constant.config, constant.cost),
    };
    await trainModel(model, small, { epochs: 1, batchSize: 20 }, hooksConstant);
    expect(constant.cost.perExample()).toBe(6);
    expect(t.cost.perExample()).toBeLessThan(6);
    model.dispose();
  }, 60_000);

  it('the worker-side factory refuses an unknown method and a bad config, naming them', () => {
    expect(() => createShardTraining({ method: 'bogus' as never, config: {} })).toThrow(/bogus/);
    expect(() => createShardTraining({ method: 'pgd-at', config: { eps: -1 } })).toThrow(
      /pgdTraining: eps/,
    );
  });
});
