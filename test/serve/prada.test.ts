/**
 * PRADA (Juuti et al. 2019): the growing sets, thresholds and distances on a hand-computed
 * stream; the W it reports against the Shapiro–Wilk test of its own distances; memory caps; and
 * on real query streams: natural Fashion-MNIST images (the bundled subset, several seeds) do not
 * alarm at the default delta, Jacobian augmentation (the attack itself, against the bundled MLP)
 * and a stream of small signed perturbations of ten seeds alarm within a reported number of
 * queries.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jacobianAugmentation, jacobianSchema } from '../../src/attacks/privacy/stealing/index.js';
import { loadDataset } from '../../src/data/index.js';
import { Rng } from '../../src/engine/rng.js';
import type { QueryClassifier } from '../../src/models/classifier.js';
import type { TfjsClassifier } from '../../src/models/index.js';
import { parseGuardConfig } from '../../src/serve/guard-config.js';
import { meanMinusStd, PradaMonitor, withoutOutliers } from '../../src/serve/prada.js';
import { shapiroWilk } from '../../src/serve/shapiro-wilk.js';
import { loadMlp } from './helpers.js';

const defaults = () =>
  parseGuardConfig({ guards: { extractionMonitor: { method: 'prada' } } }).guards
    .extractionMonitor!;
const options = (o: Partial<ReturnType<typeof defaults>> = {}) => ({ ...defaults(), ...o });

describe('PradaMonitor on a hand-computed stream', () => {
  it('grows per-class sets, measures minimum distances, raises thresholds', () => {
    const m = new PradaMonitor(2, options());
    const q = (...points: [number, number, number][]) =>
      m.observe(
        'k',
        Float32Array.from(points.flatMap((p) => p.slice(0, 2))),
        points.length,
        points.map((p) => p[2]),
      );
    // (0,0) starts class 0: no distance. (3,4): 5 from it, joins; D_G0 = {0, 5}: mean − std = 0.
    q([0, 0, 0], [3, 4, 0]);
    expect(Array.from(m.distances('k'))).toEqual([5]);
    expect(m.stats('k')).toMatchObject({ stored: 2, classes: 1, thresholds: { 0: 0 } });
    // (3,5): 1 from (3,4); joins (1 > 0); D_G0 = {0, 5, 1}: mean 2, std √(14/3) → T stays 0.
    // (0,1) starts class 1.
    q([3, 5, 0], [0, 1, 1]);
    expect(m.stats('k')).toMatchObject({ stored: 4, classes: 2, thresholds: { 0: 0, 1: 0 } });
    // (6,8): nearest of class 0 is (3,5), √18; joins; D_G0 = {0, 5, 1, √18}.
    q([6, 8, 0]);
    const joined = [0, 5, 1, Math.sqrt(18)];
    const mean = joined.reduce((a, b) => a + b) / 4;
    const std = Math.sqrt(joined.reduce((a, b) => a + (b - mean) ** 2, 0) / 4);
    const t0 = mean - std; // 0.4528...
    expect(t0).toBeCloseTo(0.45284, 4);
    expect(m.stats('k')!.thresholds[0]).toBeCloseTo(t0, 12);
    // (6, 8.3): 0.3 from (6,8) ≤ T₀: measured, not kept. (0, 3): class 1, 2 from (0,1): kept.
    q([6, 8.3, 0], [0, 3, 1]);
    const d = Array.from(m.distances('k'));
    expect(d.length).toBe(5);
    [5, 1, Math.sqrt(18), 0.3, 2].forEach((v, i) => {
      expect(d[i]).toBeCloseTo(v, 5);
    });
    expect(m.stats('k')).toMatchObject({ stored: 6 });
    // Class 1: D_G1 = {0, 2}: mean − std = 0.
    expect(m.stats('k')!.thresholds[1]).toBe(0);
    // Fewer than minQueries distances: no test yet.
    expect(m.stats('k')!.last).toEqual({ alarm: false });
  });

  it('mean − std and the 3-std filter', () => {
    expect(meanMinusStd([0, 5])).toBe(0);
    expect(meanMinusStd([2, 2, 2])).toBe(2);
    // Mean of 20 ones and one 100 is 5.71, std 21.1: 100 is 4.5 std away and is set aside.
    const v = [...Array(20).fill(1), 100];
    expect(Array.from(withoutOutliers(v, 3))).toEqual(Array(20).fill(1));
    expect(Array.from(withoutOutliers([4, 4, 4], 3))).toEqual([4, 4, 4]);
  });

  it('W is the Shapiro–Wilk statistic of its distances without the 3-std outliers', () => {
    const m = new PradaMonitor(3, options({ minQueries: 30 }));
    const rng = new Rng(5);
    let last = m.observe('k', new Float32Array(3), 1, [0]);
    for (let i = 0; i < 60; i++) {
      const x = Float32Array.from({ length: 3 }, () => rng.next());
      last = m.observe('k', x, 1, [i % 3]);
    }
    const d = m.distances('k');
    expect(d.length).toBe(58); // 61 queries, the first of each of 3 classes adds no distance
    // The filter written out again: |d − mean| ≤ 3·std (population).
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    const std = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
    const kept = Array.from(d).filter((v) => Math.abs(v - mean) <= 3 * std);
    expect(last.statistic).toBeCloseTo(shapiroWilk(kept).w, 12);
    expect(last.alarm).toBe(last.statistic! < 0.9);
  });

  it('a point mass (one query again and again) counts as W = 0', () => {
    const m = new PradaMonitor(1, options({ minQueries: 5 }));
    const v = m.observe('k', new Float32Array(8).fill(0.5), 8, Array(8).fill(2));
    expect(v).toEqual({ alarm: true, statistic: 0 });
  });

  it('groups abstentions as one class of their own', () => {
    const m = new PradaMonitor(1, options());
    m.observe('k', Float32Array.from([0.1, 0.2, 0.9]), 3, [null, null, 4]);
    expect(m.stats('k')).toMatchObject({ classes: 2, distances: 1 });
    expect(m.distances('k')[0]).toBeCloseTo(0.1, 6);
  });

  it('keeps memory bounded: stored queries, distances (a sliding window), keys', () => {
    const m = new PradaMonitor(
      1,
      options({ maxStored: 4, maxDistances: 5, minQueries: 3, maxKeys: 2 }),
    );
    const x = Float32Array.from([0, 1, 3, 7, 15, 31, 63]);
    m.observe('a', x, 7, Array(7).fill(0));
    // 0, 1, 3, 7 stored; 15, 31, 63 measured against them (8, 24, 56) but not kept.
    expect(m.stats('a')).toMatchObject({ stored: 4, distances: 5 });
    // The last five distances: 2, 4, 8, 24, 56 (1 slid out).
    expect(Array.from(m.distances('a'))).toEqual([2, 4, 8, 24, 56]);
    const one = x.subarray(0, 1);
    m.observe('b', one, 1, [0]);
    m.observe('a', one, 1, [0]); // 'a' most recently used
    m.observe('c', one, 1, [0]); // forgets 'b'
    expect(m.trackedKeys).toBe(2);
    expect(m.stats('b')).toBeUndefined();
    expect(m.stats('a')).toBeDefined();
  });

  it('refuses options it cannot work with', () => {
    expect(() => new PradaMonitor(4, options({ minQueries: 2 }))).toThrow(
      /minQueries must be an integer in \[3, maxDistances = 5000\], got 2/,
    );
    expect(() => new PradaMonitor(4, options({ maxDistances: 6000 }))).toThrow(
      /maxDistances must be an integer in \[3, 5000\], got 6000/,
    );
    expect(() => new PradaMonitor(4, options()).observe('k', new Float32Array(3), 1, [0])).toThrow(
      /3 values and 1 labels are not 1 rows of 4/,
    );
  });
});

describe('PradaMonitor on Fashion-MNIST query streams (bundled MLP, default delta)', () => {
  let mlp: TfjsClassifier;
  beforeAll(async () => {
    mlp = await loadMlp();
  });
  afterAll(() => mlp.dispose());
  const per = 28 * 28;

  function labelsOf(x: Float32Array, n: number): number[] {
    const t = tf.tensor(x, [n, 28, 28, 1]);
    const l = tf.tidy(() => tf.argMax(mlp.logits(t), 1));
    const out = Array.from(l.dataSync());
    tf.dispose([t, l]);
    return out;
  }

  /** Feeds rows to a fresh monitor in requests of 10; the number of queries at the first alarm. */
  function stream(m: PradaMonitor, x: Float32Array, labels: number[]) {
    const n = labels.length;
    let first: number | undefined;
    let minW = 1;
    for (let start = 0; start < n; start += 10) {
      const k = Math.min(10, n - start);
      const v = m.observe(
        'key',
        x.subarray(start * per, (start + k) * per),
        k,
        labels.slice(start, start + k),
      );
      if (v.statistic !== undefined) minW = Math.min(minW, v.statistic);
      if (v.alarm && first === undefined) first = start + k;
    }
    return { first, minW };
  }

  it('natural test images in random order, 10 seeds: never an alarm', () => {
    const test = loadDataset('fashion-mnist-subset', 'test', { seed: 0 });
    const n = test.shape[0];
    const labels = labelsOf(test.x, n);
    const minima: number[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const order = new Rng(seed).permutation(n);
      const x = new Float32Array(n * per);
      order.forEach((j, i) => {
        x.set(test.x.subarray(j * per, (j + 1) * per), i * per);
      });
      const r = stream(
        new PradaMonitor(per, options()),
        x,
        Array.from(order, (j) => labels[j]),
      );
      expect(r.first, `seed ${seed}: W fell to ${r.minW}`).toBeUndefined();
      minima.push(r.minW);
    }
    // Measured: the lowest W over 10 seeds × 1000 queries is 0.921.
    expect(Math.min(...minima)).toBeGreaterThan(0.9);
  });

  it('small signed perturbations of ten seeds (Jacobian-style points): alarm within 110 queries (the first test)', () => {
    const test = loadDataset('fashion-mnist-subset', 'test', { seed: 0 });
    const rng = new Rng(11);
    // Ten seeds, then rounds that double the set: each point moved by λ·s, s a random sign per pixel.
    let set = Array.from(rng.permutation(test.shape[0]).subarray(0, 10), (j) =>
      test.x.slice(j * per, (j + 1) * per),
    );
    const queries = [...set];
    while (queries.length < 640) {
      const moved = set.map((p) =>
        p.map((v) => Math.min(1, Math.max(0, v + (rng.next() < 0.5 ? -0.1 : 0.1)))),
      );
      queries.push(...moved);
      set = [...set, ...moved];
    }
    const x = new Float32Array(queries.length * per);
    queries.forEach((p, i) => {
      x.set(p, i * per);
    });
    const r = stream(new PradaMonitor(per, options()), x, labelsOf(x, queries.length));
    expect(r.first).toBeDefined();
    expect(r.first!).toBeLessThanOrEqual(110);
  });

  it('Jacobian augmentation against the MLP (its own queries): alarm within 110 queries (the first test)', async () => {
    const test = loadDataset('fashion-mnist-subset', 'test', { seed: 0 });
    const monitor = new PradaMonitor(per, options());
    let queries = 0;
    let first: number | undefined;
    // The victim as the service sees it: each batch of queries, with the labels it answers.
    const victim: QueryClassifier = {
      inputShape: mlp.inputShape,
      numClasses: mlp.numClasses,
      bounds: mlp.bounds,
      predict: async (xt) => {
        const p = tf.tidy(() => tf.softmax(mlp.logits(xt))) as tf.Tensor2D;
        const rows = xt.shape[0];
        const xs = (await xt.data()) as Float32Array;
        const labels = labelsOf(xs, rows);
        for (let r = 0; r < rows; r += 10) {
          const k = Math.min(10, rows - r);
          const v = monitor.observe(
            'thief',
            xs.subarray(r * per, (r + k) * per),
            k,
            labels.slice(r, r + k),
          );
          queries += k;
          if (v.alarm && first === undefined) first = queries;
        }
        return p;
      },
    };
    const c = jacobianSchema.parse({ budget: 640, seedSize: 10, arch: 'mlp', epochs: 1, seed: 1 });
    const stolen = await jacobianAugmentation(victim, test, c);
    stolen.model.dispose();
    expect(queries).toBe(640);
    expect(first).toBeDefined();
    // Measured: 110, the first request after which the key has 100 distances.
    expect(first!).toBeLessThanOrEqual(110);
  });
});
