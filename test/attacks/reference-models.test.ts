/**
 * Attacks on the committed Fashion-MNIST models: the properties any honest evaluation must show.
 * Sizes are kept small enough for CI (a few dozen test images); the closing figures of the
 * robustness table come from `parry attack` on 1,000 images.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AttackParams, findAttack } from '../../src/attacks/registry.js';
import { type Dataset, loadDataset, takeFirst } from '../../src/data/index.js';
import { evaluateAttack } from '../../src/evaluate/robustness.js';
import { loadClassifier, type TfjsClassifier } from '../../src/models/index.js';

let cnn: TfjsClassifier;
let data: Dataset;

beforeAll(async () => {
  cnn = await loadClassifier('models/fmnist-cnn-small');
  data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 64);
});
afterAll(() => cnn.dispose());

/** Runs `attack` with the options of `params` it reads (each attack refuses the others). */
async function run(attack: string, params: Partial<AttackParams>, n = 64) {
  const entry = findAttack(attack)!;
  const all: Partial<AttackParams> = {
    norm: 'linf',
    eps: 0.1,
    targeted: false,
    seed: 0,
    ...params,
  };
  const p = Object.fromEntries(
    Object.entries(all).filter(([k]) => k in entry.schema.shape),
  ) as AttackParams;
  return evaluateAttack(cnn, takeFirst(data, n), entry, p, { batchSize: 64 });
}

// Minutes each on a busy 2-core machine: longer than the default test timeout.
describe('attacks on fmnist-cnn-small', { timeout: 600_000 }, () => {
  it('robust accuracy falls as eps grows, and PGD-20 is at least as strong as FGSM', async () => {
    const before = tf.memory().numTensors;
    const grid = [0, 0.02, 0.05, 0.1];
    const pgd = [];
    const fgsm = [];
    for (const eps of grid) {
      pgd.push((await run('pgd', { eps, steps: 20 })).robustAccuracy);
      fgsm.push((await run('fgsm', { eps })).robustAccuracy);
    }
    for (let i = 1; i < grid.length; i++) {
      expect(pgd[i]).toBeLessThanOrEqual(pgd[i - 1]);
      expect(fgsm[i]).toBeLessThanOrEqual(fgsm[i - 1]);
    }
    expect(pgd[0]).toBeGreaterThan(0.85); // eps 0 is clean accuracy
    expect(pgd[3]).toBeLessThan(0.2);
    for (let i = 0; i < grid.length; i++) expect(pgd[i]).toBeLessThanOrEqual(fgsm[i]);
    expect(fgsm[2] - pgd[2]).toBeGreaterThan(0.1); // iterating matters at eps 0.05
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with eps = 1 (the whole box) PGD drives accuracy to 0, in L-inf and L2', async () => {
    expect((await run('pgd', { eps: 1, steps: 20 })).robustAccuracy).toBe(0);
    // The L2 ball of radius 28 contains the whole 28x28 box.
    expect((await run('pgd', { eps: 28, norm: 'l2', steps: 20 })).robustAccuracy).toBe(0);
  });

  it("Square at 5,000 queries lands within 10 points of APGD's robust accuracy", async () => {
    const apgd = await run('apgd-ce', { eps: 0.1, steps: 100 });
    const square = await run('square', { eps: 0.1, maxQueries: 5000 });
    expect(square.robustAccuracy - apgd.robustAccuracy).toBeLessThanOrEqual(0.1);
    expect(square.queries).toBeGreaterThan(0);
    expect(square.gradientEvaluations).toBe(0);
  });

  it("C&W's median L2 is no larger than DeepFool's (within 5%)", async () => {
    const deepfool = await run('deepfool', { norm: 'l2' }, 24);
    const cw = await run('cw', { norm: 'l2' }, 24);
    expect(cw.attackSuccessRate).toBe(1);
    expect(deepfool.attackSuccessRate).toBe(1);
    expect(cw.medianPerturbation).toBeLessThanOrEqual(1.05 * deepfool.medianPerturbation);
  });

  it('auto is never weaker than any of its members', async () => {
    const params = { eps: 0.05, steps: 25, maxQueries: 500 };
    const auto = await run('auto', params, 32);
    for (const member of ['apgd-ce', 'apgd-t', 'square']) {
      const alone = await run(member, params, 32);
      expect(auto.robustAccuracy).toBeLessThanOrEqual(alone.robustAccuracy);
    }
    const broken = auto.perExample.filter((e) => e.brokenBy !== null && e.brokenBy !== 'clean');
    expect(broken.length).toBeGreaterThan(0);
    for (const e of auto.perExample) {
      expect(e.brokenBy === null).toBe(e.adversarial === e.label && e.clean === e.label);
    }
  });
});
