/**
 * Clean-label backdoor and feature collision on a tiny seeded cnn-small ([8, 8, 1], 3 classes):
 * labels never change; clean-label poisons stay within eps of their originals outside the
 * trigger, which is stamped exactly; feature collision lowers the feature distance it optimises
 * (measured here through the model's own feature reader) and stays near its watermarked base.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { cleanLabel } from '../../../src/attacks/poisoning/clean-label.js';
import { featureCollision } from '../../../src/attacks/poisoning/feature-collision.js';
import { applyTrigger } from '../../../src/attacks/poisoning/poison-manifest.js';
import { featureModel, readFeatures } from '../../../src/models/features.js';
import { cnnModel } from '../helpers.js';
import { changedImages, example, expectBadOption, expectUnitRange, gridData } from './helpers.js';

const data = gridData(60, 3, 1);
const test = gridData(30, 3, 1, 'test');
const model = cnnModel();

describe('clean-label backdoor', () => {
  it('perturbs target-class examples within eps, stamps the trigger, keeps every label', async () => {
    tf.tidy(() => {
      model.logits(tf.zeros([1, 8, 8, 1]));
    });
    const before = tf.memory().numTensors;
    const eps = 0.05;
    const r = await cleanLabel(data, { rate: 0.1, target: 2, eps, steps: 3, seed: 1 }, { model });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.dataset.labels).toEqual(data.labels);
    expect(r.poisonedIndices).toHaveLength(6);
    for (const i of r.poisonedIndices) expect(data.labels[i]).toBe(2);
    expect(changedImages(data, r.dataset)).toEqual(r.poisonedIndices);
    expectUnitRange(r.dataset.x);
    let moved = 0;
    for (const i of r.poisonedIndices) {
      const x0 = example(data, i);
      const x1 = example(r.dataset, i);
      for (let row = 0; row < 8; row++) {
        for (let col = 0; col < 8; col++) {
          const j = row * 8 + col;
          if (row >= 5 && col >= 5) expect(x1[j]).toBe(1);
          else {
            expect(Math.abs(x1[j] - x0[j])).toBeLessThanOrEqual(eps + 1e-6);
            if (x1[j] !== x0[j]) moved++;
          }
        }
      }
    }
    expect(moved).toBeGreaterThan(100);
    expect(r.manifest).toMatchObject({
      labelsChanged: false,
      targetClass: 2,
      mapping: 'all-to-one',
    });
    // The manifest's trigger is the one on the poisons: re-applying it changes none of them.
    const again = applyTrigger(r.dataset, r.manifest);
    for (const i of r.poisonedIndices) expect(example(again, i)).toEqual(example(r.dataset, i));
  });

  it('is seeded, and refuses a missing model, a bad eps, a patch too large', async () => {
    const o = { rate: 0.05, target: 0, eps: 0.03, steps: 2 };
    const a = await cleanLabel(data, { ...o, seed: 4 }, { model });
    const b = await cleanLabel(data, { ...o, seed: 4 }, { model });
    const c = await cleanLabel(data, { ...o, seed: 5 }, { model });
    expect(b.dataset.x).toEqual(a.dataset.x);
    expect(c.poisonedIndices).not.toEqual(a.poisonedIndices);
    await expectBadOption(() => cleanLabel(data, o, {}), 'model');
    await expectBadOption(() => cleanLabel(data, { ...o, eps: -1 }, { model }), 'eps');
    await expectBadOption(() => cleanLabel(data, { ...o, patchSize: 12 }, { model }), 'patchSize');
    await expectBadOption(() => cleanLabel(data, { ...o, rate: 0.5 }, { model }), 'rate');
  });
});

describe('feature collision', () => {
  const fm = featureModel(model);
  /** ‖f(x) − f(t)‖² per example, through the model's feature reader (float64). */
  function distances(x: Float32Array, n: number, t: Float32Array): number[] {
    const xs = tf.tensor(x, [n, 8, 8, 1]);
    const ts = tf.tensor(t, [1, 8, 8, 1]);
    const f = readFeatures(fm, xs, fm.penultimate);
    const ft = readFeatures(fm, ts, fm.penultimate);
    tf.dispose([xs, ts]);
    const d = ft.length;
    return Array.from({ length: n }, (_, i) =>
      ft.reduce((s, v, j) => s + (f[i * d + j] - v) ** 2, 0),
    );
  }

  it('lowers the feature distance to the target, stays near the watermarked base, keeps labels', async () => {
    const targetImage = Array.from(test.labels.keys()).find((i) => test.labels[i] !== 1)!;
    const t = example(test, targetImage);
    const before = tf.memory().numTensors;
    const r = await featureCollision(
      data,
      { rate: 0.05, target: 1, targetImage, maxIterations: 30, seed: 2 },
      { model, test },
    );
    expect(tf.memory().numTensors).toBe(before);
    expect(r.dataset.labels).toEqual(data.labels);
    expect(r.poisonedIndices).toHaveLength(3);
    for (const i of r.poisonedIndices) expect(data.labels[i]).toBe(1);
    expect(changedImages(data, r.dataset)).toEqual(r.poisonedIndices);
    expectUnitRange(r.dataset.x);
    const n = r.poisonedIndices.length;
    const bases = new Float32Array(n * 64);
    const poisons = new Float32Array(n * 64);
    r.poisonedIndices.forEach((j, i) => {
      const b = example(data, j);
      bases.set(
        b.map((v, q) => 0.7 * v + 0.3 * t[q]),
        i * 64,
      );
      poisons.set(example(r.dataset, j), i * 64);
    });
    const d0 = distances(bases, n, t);
    const d1 = distances(poisons, n, t);
    for (let i = 0; i < n; i++) expect(d1[i]).toBeLessThan(0.6 * d0[i]);
    expect(r.summary!.featureDistanceAfter).toBeLessThan(r.summary!.featureDistanceBefore);
    // Near the watermarked base: much closer to it than the base is to the target image.
    for (let i = 0; i < n; i++) {
      let near = 0;
      let far = 0;
      for (let q = 0; q < 64; q++) {
        near += (poisons[i * 64 + q] - bases[i * 64 + q]) ** 2;
        far += (bases[i * 64 + q] - t[q]) ** 2;
      }
      expect(Math.sqrt(near)).toBeLessThan(0.5 * Math.sqrt(far));
    }
    expect(r.manifest).toMatchObject({
      targetImages: [targetImage],
      targetClass: 1,
      trigger: null,
      labelsChanged: false,
    });
  });

  it('refuses a target image of the target class, outside the test set, or no test set', async () => {
    const same = Array.from(test.labels.keys()).find((i) => test.labels[i] === 1)!;
    await expectBadOption(
      () => featureCollision(data, { rate: 0.05, target: 1, targetImage: same }, { model, test }),
      'targetImage',
    );
    await expectBadOption(
      () => featureCollision(data, { rate: 0.05, target: 1, targetImage: 30 }, { model, test }),
      'targetImage',
    );
    await expectBadOption(
      () => featureCollision(data, { rate: 0.05, target: 1, targetImage: 0 }, { model }),
      'test',
    );
    await expectBadOption(
      () => featureCollision(data, { rate: 0.05, target: 1 } as never, { model, test }),
      'targetImage',
    );
  });
});
