/**
 * Deep Partition Aggregation: the certificate against an exhaustive search over vote changes, the
 * hash against the published FNV-1a vectors, partitions that depend on content alone, and a small
 * seeded end-to-end run whose curve and median follow from its per-example records.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  certifyDpa,
  contentHash,
  dpaCertificate,
  partitionDataset,
  partitionOf,
  trainDpa,
} from '../../src/certify/index.js';
import { type Dataset, syntheticDataset } from '../../src/data/index.js';

/** Plurality winner, ties to the smaller class: written apart from the module on purpose. */
function winner(counts: number[]): number {
  return counts.indexOf(Math.max(...counts));
}

/** Every vote vector with `k` votes over `classes` classes (as counts per class). */
function* countVectors(k: number, classes: number): Generator<number[]> {
  if (classes === 1) {
    yield [k];
    return;
  }
  for (let first = k; first >= 0; first--) {
    for (const rest of countVectors(k - first, classes - 1)) yield [first, ...rest];
  }
}

/**
 * Fewest base classifiers whose votes must change to change the winner: every assignment of a
 * class to each of the k voters (classes^k of them), its Hamming distance to `votes`. Each
 * poisoned example (inserted or removed) changes the training set, so the vote, of one partition.
 */
function fewestChangesToFlip(votes: number[], classes: number): number {
  const k = votes.length;
  const start = winner(tally(votes, classes));
  let best = Infinity;
  const other = new Array<number>(k);
  for (let code = 0; code < classes ** k; code++) {
    let rest = code;
    let distance = 0;
    for (let i = 0; i < k; i++) {
      other[i] = rest % classes;
      rest = Math.floor(rest / classes);
      if (other[i] !== votes[i]) distance++;
    }
    if (distance < best && winner(tally(other, classes)) !== start) best = distance;
  }
  return best;
}

function tally(votes: number[], classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const v of votes) counts[v]++;
  return counts;
}

/** `data` with its examples in reverse order. */
function reversed(data: Dataset): Dataset {
  const n = data.shape[0];
  const per = data.x.length / n;
  const x = new Float32Array(data.x.length);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    x.set(data.x.subarray(i * per, (i + 1) * per), (n - 1 - i) * per);
    labels[n - 1 - i] = data.labels[i];
  }
  return { ...data, x, labels };
}

describe('DPA certificate', () => {
  it('equals an exhaustive search over vote changes for every vote vector, k ≤ 7, ≤ 4 classes', () => {
    let checked = 0;
    for (let classes = 2; classes <= 4; classes++) {
      for (let k = 1; k <= 7; k++) {
        for (const counts of countVectors(k, classes)) {
          const { prediction, certified } = dpaCertificate(counts);
          const what = `counts ${counts.join(',')}`;
          expect(prediction, what).toBe(winner(counts));
          expect(certified, what).toBeGreaterThanOrEqual(0);
          const votes = counts.flatMap((n, c) => new Array<number>(n).fill(c));
          // No change of ≤ certified votes flips it; some change of certified + 1 votes does.
          expect(fewestChangesToFlip(votes, classes), what).toBe(certified + 1);
          checked++;
        }
      }
    }
    // C(k + classes − 1, classes − 1) vectors for each k: 35 + 119 + 329.
    expect(checked).toBe(483);
  });

  it('breaks ties to the smaller class and rejects malformed counts', () => {
    expect(dpaCertificate([3, 3, 0])).toEqual({ prediction: 0, certified: 0 });
    expect(dpaCertificate([0, 3, 3])).toEqual({ prediction: 1, certified: 0 });
    expect(dpaCertificate([2, 5, 1])).toEqual({ prediction: 1, certified: 1 });
    expect(dpaCertificate([4, 5])).toEqual({ prediction: 1, certified: 0 });
    expect(dpaCertificate([5, 4])).toEqual({ prediction: 0, certified: 0 });
    expect(dpaCertificate([7, 0, 0])).toEqual({ prediction: 0, certified: 3 });
    expect(dpaCertificate([5]).certified).toBe(Infinity);
    expect(() => dpaCertificate([])).toThrow(/counts/);
    expect(() => dpaCertificate([2, -1])).toThrow(/counts/);
  });
});

describe('DPA partitions', () => {
  it('hash the content with FNV-1a (the published test vectors)', () => {
    // FNV-1a 32-bit vectors of "", "a", "foobar" (Fowler, Noll, Vo; draft-eastlake-fnv),
    // re-checked with a five-line Python FNV-1a; values v = byte / 255 give back the bytes.
    const bytes = (s: string) => Array.from(s, (ch) => ch.charCodeAt(0) / 255);
    expect(contentHash([])).toBe(0x811c9dc5);
    expect(contentHash(bytes('a'))).toBe(0xe40c292c);
    expect(contentHash(bytes('foobar'))).toBe(0xbf9cf968);
    expect(partitionOf(bytes('foobar'), 10)).toBe(0xbf9cf968 % 10);
    expect(() => partitionOf([0.5], 0)).toThrow(/k must be/);
  });

  it('depend on content alone: labels and order do not move an example; balanced', () => {
    const data = syntheticDataset({
      shape: [6, 6, 1],
      numClasses: 3,
      n: 1000,
      seed: 4,
      noise: 0.2,
    });
    const k = 10;
    const part = partitionDataset(data, k);
    expect(part).toHaveLength(1000);
    // Each example in exactly one partition, the one its own values give.
    for (let i = 0; i < 1000; i++) {
      expect(part[i]).toBeGreaterThanOrEqual(0);
      expect(part[i]).toBeLessThan(k);
      expect(part[i]).toBe(partitionOf(data.x.subarray(i * 36, (i + 1) * 36), k));
    }
    const sizes = new Array(k).fill(0);
    for (const p of part) sizes[p]++;
    for (const s of sizes) expect(s).toBeGreaterThan(60);
    for (const s of sizes) expect(s).toBeLessThan(140);
    const relabelled = { ...data, labels: data.labels.map((y) => (y + 1) % 3) };
    expect(partitionDataset(relabelled, k)).toEqual(part);
    const back = partitionDataset(reversed(data), k);
    for (let i = 0; i < 1000; i++) expect(back[999 - i]).toBe(part[i]);
    // Changing one example's pixels moves that example at most; every other one stays.
    const x = data.x.slice();
    x.fill(0.25, 0, 36);
    const changed = partitionDataset({ ...data, x }, k);
    for (let i = 1; i < 1000; i++) expect(changed[i]).toBe(part[i]);
  });
});

describe('DPA end to end', () => {
  it('trains k seeded models; votes, curve and median follow from the records', async () => {
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
    const progress: number[][] = [];
    const a = await trainDpa(train, config, { onProgress: (d, t) => progress.push([d, t]) });
    expect(progress).toEqual([1, 2, 3, 4, 5].map((d) => [d, 5]));
    expect(a.models).toHaveLength(5);
    expect(a.config).toMatchObject(config);
    expect(a.sizes.reduce((s, v) => s + v)).toBe(300);
    const r = certifyDpa(a.models, test);
    expect(r.labels).toEqual(Array.from(test.labels));
    for (const c of r.counts) expect(c.reduce((s, v) => s + v)).toBe(5);
    r.certified.forEach((c, i) => {
      const d = dpaCertificate(r.counts[i]);
      expect(r.predictions[i]).toBe(d.prediction);
      expect(c).toBe(d.prediction === test.labels[i] ? d.certified : -1);
    });
    const correct = r.predictions.filter((p, i) => p === test.labels[i]).length;
    expect(r.accuracy).toBe(correct / 60);
    expect(r.accuracy).toBeGreaterThan(0.6);
    // The curve: sizes 0 … max certified, non-increasing, recomputed from the records.
    expect(r.curve.map((p) => p.size)).toEqual(
      Array.from({ length: Math.max(...r.certified) + 1 }, (_, s) => s),
    );
    expect(r.curve[0].accuracy).toBe(r.accuracy);
    for (let i = 1; i < r.curve.length; i++) {
      expect(r.curve[i].accuracy).toBeLessThanOrEqual(r.curve[i - 1].accuracy);
    }
    for (const { size, accuracy } of r.curve) {
      expect(accuracy).toBe(r.certified.filter((c) => c >= size).length / 60);
    }
    // The median: largest size at ≥ 50% certified accuracy, = the sorted value at ⌊n/2⌋.
    const atHalf = r.curve.filter((p) => p.accuracy >= 0.5).map((p) => p.size);
    expect(r.medianCertified).toBe(atHalf.length > 0 ? Math.max(...atHalf) : -1);
    expect(r.medianCertified).toBe([...r.certified].sort((x, y) => x - y)[30]);
    // Seeded: the same config gives the same votes; and each model is a function of its
    // partition's set: the same data in reverse order gives them too.
    const b = await trainDpa(train, config);
    expect(certifyDpa(b.models, test).counts).toEqual(r.counts);
    const c = await trainDpa(reversed(train), config);
    expect(c.sizes).toEqual(a.sizes);
    expect(certifyDpa(c.models, test).counts).toEqual(r.counts);
    expect(() => certifyDpa(a.models, { ...test, numClasses: 4 })).toThrow(/3 outputs/);
    for (const m of [...a.models, ...b.models, ...c.models]) m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad options with their names, and wraps seed + i at 2^32', async () => {
    const data = syntheticDataset({ shape: [4, 4, 1], numClasses: 2, n: 20, seed: 1 });
    await expect(trainDpa(data, { k: 0 })).rejects.toThrow(/k/);
    await expect(trainDpa(data, { arch: 'vgg' })).rejects.toThrow(/arch/);
    await expect(trainDpa(data, { k: 2, depth: 3 } as never)).rejects.toThrow(/depth/);
    const before = tf.memory().numTensors;
    const e = await trainDpa(data, { k: 2, arch: 'mlp', epochs: 1, seed: 0xffffffff });
    expect(e.models.map((m) => m.getUserDefinedMetadata())).toEqual([
      { parry: { arch: 'mlp', seed: 0xffffffff } },
      { parry: { arch: 'mlp', seed: 0 } },
    ]);
    for (const m of e.models) m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
