/**
 * Deep Partition Aggregation: the certificate against a brute-force search over vote changes,
 * partitions that depend on content alone, and a small seeded end-to-end run whose curve and
 * median follow from its per-example records.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { certifyDpa, dpaCertificate, partitionOf, trainDpa } from '../../src/certify/index.js';
import { syntheticDataset } from '../../src/data/index.js';
import { Rng } from '../../src/engine/rng.js';

/** Fewest single-vote moves (a vote from one class to another) that change the plurality winner. */
function movesToFlip(counts: number[]): number {
  const winner = (v: number[]) => v.indexOf(Math.max(...v));
  const start = winner(counts);
  const seen = new Set([counts.join(',')]);
  let frontier = [counts];
  for (let moves = 1; moves <= counts.reduce((a, b) => a + b, 0) + 1; moves++) {
    const next: number[][] = [];
    for (const v of frontier) {
      for (let a = 0; a < v.length; a++) {
        if (v[a] === 0) continue;
        for (let b = 0; b < v.length; b++) {
          if (b === a) continue;
          const w = [...v];
          w[a]--;
          w[b]++;
          if (winner(w) !== start) return moves;
          const key = w.join(',');
          if (!seen.has(key)) {
            seen.add(key);
            next.push(w);
          }
        }
      }
    }
    frontier = next;
  }
  return Infinity;
}

describe('DPA', () => {
  it('the certificate is one less than the fewest vote changes that flip the prediction', () => {
    const rng = new Rng(2);
    for (let trial = 0; trial < 300; trial++) {
      const classes = 2 + rng.int(3);
      const k = 1 + rng.int(7);
      const counts = new Array(classes).fill(0);
      for (let i = 0; i < k; i++) counts[rng.int(classes)]++;
      const { prediction, certified } = dpaCertificate(counts);
      expect(prediction).toBe(counts.indexOf(Math.max(...counts)));
      expect(certified, counts.join(',')).toBe(movesToFlip(counts) - 1);
    }
    // Hand cases: ties go to the smaller class.
    expect(dpaCertificate([3, 3, 0])).toEqual({ prediction: 0, certified: 0 });
    expect(dpaCertificate([2, 5, 1])).toEqual({ prediction: 1, certified: 1 });
    expect(dpaCertificate([7, 0, 0])).toEqual({ prediction: 0, certified: 3 });
  });

  it('partitions depend on content alone: labels and order do not move an example', () => {
    const data = syntheticDataset({
      shape: [6, 6, 1],
      numClasses: 3,
      n: 1000,
      seed: 4,
      noise: 0.2,
    });
    const k = 10;
    const part = partitionOf(data, k);
    const sizes = new Array(k).fill(0);
    for (const p of part) sizes[p]++;
    expect(sizes.reduce((a, b) => a + b)).toBe(1000);
    for (const s of sizes) expect(s).toBeGreaterThan(60);
    for (const s of sizes) expect(s).toBeLessThan(140);
    const relabelled = { ...data, labels: data.labels.map((y) => (y + 1) % 3) };
    expect(partitionOf(relabelled, k)).toEqual(part);
    // Reversed order: each example keeps its partition.
    const per = 36;
    const x = new Float32Array(data.x.length);
    for (let i = 0; i < 1000; i++) x.set(data.x.subarray(i * per, (i + 1) * per), (999 - i) * per);
    const reversed = partitionOf({ ...data, x }, k);
    for (let i = 0; i < 1000; i++) expect(reversed[999 - i]).toBe(part[i]);
  });

  it('trains k seeded models whose votes give a non-increasing curve and its median', async () => {
    const shape = [6, 6, 1];
    const train = syntheticDataset({ shape, numClasses: 3, n: 300, seed: 4, noise: 0.15 });
    const test = syntheticDataset({
      shape,
      numClasses: 3,
      n: 60,
      seed: 4,
      noise: 0.15,
      split: 'test',
    });
    const before = tf.memory().numTensors;
    const config = { k: 5, arch: 'mlp', epochs: 2, batchSize: 32, seed: 3 };
    const a = await trainDpa(train, config);
    expect(a.models).toHaveLength(5);
    expect(a.sizes.reduce((s, v) => s + v)).toBe(300);
    const r = certifyDpa(a.models, test);
    for (const c of r.counts) expect(c.reduce((s, v) => s + v)).toBe(5);
    for (let i = 1; i < r.curve.length; i++) {
      expect(r.curve[i].accuracy).toBeLessThanOrEqual(r.curve[i - 1].accuracy);
    }
    r.curve.forEach(({ size, accuracy }) => {
      expect(accuracy).toBe(r.certified.filter((c) => c >= size).length / 60);
    });
    expect(r.curve[0].accuracy).toBe(r.accuracy);
    r.certified.forEach((c, i) => {
      const d = dpaCertificate(r.counts[i]);
      expect(c).toBe(d.prediction === test.labels[i] ? d.certified : -1);
    });
    const sorted = [...r.certified].sort((x, y) => x - y);
    expect(r.medianCertified).toBe((sorted[29] + sorted[30]) / 2);
    expect(r.accuracy).toBeGreaterThan(0.6);
    // Seeded: the same config gives the same votes.
    const b = await trainDpa(train, config);
    expect(certifyDpa(b.models, test).counts).toEqual(r.counts);
    for (const m of [...a.models, ...b.models]) m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
