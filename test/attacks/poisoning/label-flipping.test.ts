/**
 * Label flipping: labels change at exactly the reported indices and the reported rate, images
 * never; class-pair flips only source → target; adversarial flips pick the examples the
 * reference model is most confident about, checked against softmax probabilities computed here
 * in float64 from the linear model's own weights (not through tfjs).
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  adversarialFlip,
  pairFlip,
  randomFlip,
} from '../../../src/attacks/poisoning/label-flipping.js';
import { syntheticDataset } from '../../../src/data/synthetic.js';
import { LinearClassifier, values } from '../helpers.js';
import { changedLabels, expectBadOption, gridData } from './helpers.js';

const data = gridData(200, 4, 2);

describe('label flipping', () => {
  it('random: round(rate·n) examples, each to another class, nothing else touched', () => {
    for (const rate of [0, 0.1, 0.25, 0.5]) {
      const r = randomFlip(data, { rate, seed: 3 });
      expect(r.poisonedIndices).toHaveLength(Math.round(rate * 200));
      expect(changedLabels(data.labels, r.dataset.labels)).toEqual(r.poisonedIndices);
      expect(r.dataset.x).toEqual(data.x);
      for (const i of r.poisonedIndices) {
        expect(r.dataset.labels[i]).toBeGreaterThanOrEqual(0);
        expect(r.dataset.labels[i]).toBeLessThan(4);
      }
      expect(r.manifest).toMatchObject({
        attack: 'label-flip',
        trigger: null,
        labelsChanged: true,
      });
      expect(r.manifest.poisonedIndices).toEqual(r.poisonedIndices);
    }
  });

  it('random: the new class is uniform over the other K − 1 (seeded; a loose chi-square bound)', () => {
    const big = syntheticDataset({ shape: [1, 1, 1], numClasses: 4, n: 4000, seed: 1 });
    const r = randomFlip(big, { rate: 0.5, seed: 9 });
    // Offset (new − old) mod K is uniform on {1, 2, 3}: 2000 flips, expected 666.7 each.
    const counts = [0, 0, 0];
    for (const i of r.poisonedIndices)
      counts[((r.dataset.labels[i] - big.labels[i] + 4) % 4) - 1]++;
    const chi2 = counts.reduce((s, c) => s + (c - 2000 / 3) ** 2 / (2000 / 3), 0);
    expect(chi2).toBeLessThan(13.8); // p = 0.001 for 2 degrees of freedom
  });

  it('class-pair: round(rate·n_source) source examples become target, no other label moves', () => {
    const r = pairFlip(data, { source: 1, target: 3, rate: 0.4, seed: 5 });
    const sources = Array.from(data.labels.keys()).filter((i) => data.labels[i] === 1);
    expect(r.poisonedIndices).toHaveLength(Math.round(0.4 * sources.length));
    expect(changedLabels(data.labels, r.dataset.labels)).toEqual(r.poisonedIndices);
    for (const i of r.poisonedIndices) {
      expect(data.labels[i]).toBe(1);
      expect(r.dataset.labels[i]).toBe(3);
    }
    expect(r.manifest).toMatchObject({ sourceClass: 1, targetClass: 3 });
  });

  it('is seeded: same seed, same flips; another seed, other flips', () => {
    const a = randomFlip(data, { rate: 0.2, seed: 1 });
    expect(randomFlip(data, { rate: 0.2, seed: 1 }).dataset.labels).toEqual(a.dataset.labels);
    expect(randomFlip(data, { rate: 0.2, seed: 2 }).poisonedIndices).not.toEqual(a.poisonedIndices);
    const p = pairFlip(data, { source: 0, target: 1, rate: 0.3, seed: 1 });
    expect(
      pairFlip(data, { source: 0, target: 1, rate: 0.3, seed: 2 }).poisonedIndices,
    ).not.toEqual(p.poisonedIndices);
  });

  it('refuses a rate above 0.5, a class out of range, source = target', async () => {
    await expectBadOption(() => randomFlip(data, { rate: 0.6 }), 'rate');
    await expectBadOption(() => randomFlip(data, { rate: -0.01 }), 'rate');
    await expectBadOption(() => pairFlip(data, { source: 4, target: 0 }), 'source');
    await expectBadOption(() => pairFlip(data, { source: 0, target: 7 }), 'target');
    await expectBadOption(() => pairFlip(data, { source: 2, target: 2 }), 'target');
    await expectBadOption(() => pairFlip(data, { target: 2 } as never), 'source');
    await expectBadOption(() => adversarialFlip(data, { rate: 0.1 }, {}), 'model');
  });
});

describe('adversarial label flipping', () => {
  const n = 50;
  const k = 3;
  const d = 6;
  const ds = syntheticDataset({ shape: [2, 3, 1], numClasses: k, n, seed: 4 });
  const w = Array.from({ length: d }, (_, i) => values(k, 10 + i, -2, 2));
  const bias = [0.1, -0.2, 0.05];
  const model = new LinearClassifier([2, 3, 1], w, bias);

  /** p(label | x) and the best other class, in float64 from the weights. */
  function reference(i: number): { p: number; other: number } {
    const z = bias.map((b, c) => w.reduce((s, row, j) => s + row[c] * ds.x[i * d + j], b));
    const m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m));
    const total = e.reduce((a, b) => a + b, 0);
    const y = ds.labels[i];
    let other = -1;
    for (let c = 0; c < k; c++) if (c !== y && (other < 0 || z[c] > z[other])) other = c;
    return { p: e[y] / total, other };
  }

  it('flips the most confident examples to the model’s best other class', async () => {
    const before = tf.memory().numTensors;
    const r = await adversarialFlip(ds, { rate: 0.2 }, { model });
    expect(tf.memory().numTensors).toBe(before);
    const refs = Array.from({ length: n }, (_, i) => reference(i));
    const order = refs.map((_, i) => i).sort((a, b) => refs[b].p - refs[a].p || a - b);
    const want = order.slice(0, 10).sort((a, b) => a - b);
    expect(r.poisonedIndices).toEqual(want);
    // Not a near-tie at the cut (float32 logits could reorder one).
    expect(refs[order[9]].p - refs[order[10]].p).toBeGreaterThan(1e-4);
    expect(changedLabels(ds.labels, r.dataset.labels)).toEqual(want);
    for (const i of want) expect(r.dataset.labels[i]).toBe(refs[i].other);
    expect(r.dataset.x).toEqual(ds.x);
  });

  it('refuses a model for other data', async () => {
    const other = new LinearClassifier(
      [2, 3, 1],
      w.map((row) => row.slice(0, 2)),
      [0, 0],
    );
    await expectBadOption(() => adversarialFlip(ds, {}, { model: other }), 'model');
  });
});
