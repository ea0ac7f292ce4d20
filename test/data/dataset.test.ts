import { describe, expect, it } from 'vitest';
import {
  batches,
  type Dataset,
  selectExamples,
  shuffleDataset,
  sliceDataset,
  splitDataset,
  stratifiedIndices,
  takeFirst,
} from '../../src/data/dataset.js';
import { Rng } from '../../src/engine/rng.js';
import { classCounts, expectParryError } from './helpers.js';

/** n examples of shape [1, 2, 1]; example i holds values [i, i + 0.5] and label i % 3. */
function tiny(n: number): Dataset {
  const x = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) x.set([i, i + 0.5], 2 * i);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return {
    name: 'tiny',
    x,
    shape: [n, 1, 2, 1],
    labels,
    numClasses: 3,
    classNames: ['a', 'b', 'c'],
  };
}

/** The example ids (x[2i]) in a data set, in order. */
const ids = (ds: Dataset) => Array.from({ length: ds.labels.length }, (_, i) => ds.x[2 * i]);

describe('batches', () => {
  it.each([1, 3, 4, 10, 11, 50])('covers every example exactly once (batchSize %i)', (size) => {
    const ds = tiny(10);
    const seen: number[] = [];
    let expectedStart = 0;
    for (const b of batches(ds, size)) {
      expect(b.start).toBe(expectedStart);
      expect(b.shape).toEqual([b.labels.length, 1, 2, 1]);
      expect(b.x.length).toBe(2 * b.labels.length);
      expect(b.labels.length).toBeLessThanOrEqual(size);
      expect(b.x.buffer).toBe(ds.x.buffer); // a view, not a copy
      for (let i = 0; i < b.labels.length; i++) {
        expect(b.labels[i]).toBe(b.x[2 * i] % 3);
        seen.push(b.x[2 * i]);
      }
      expectedStart += b.labels.length;
    }
    expect(seen).toEqual(ids(ds));
  });

  it('yields nothing for an empty set and rejects a bad batch size', () => {
    expect([...batches(tiny(0), 4)]).toEqual([]);
    expectParryError(() => batches(tiny(3), 0).next(), 'BAD_OPTION', 'batchSize', '0');
  });
});

describe('slicing and shuffling', () => {
  it('takeFirst and sliceDataset copy the requested rows', () => {
    const ds = tiny(10);
    const first = takeFirst(ds, 4);
    expect(ids(first)).toEqual([0, 1, 2, 3]);
    expect(first.shape).toEqual([4, 1, 2, 1]);
    expect(first.classNames).toEqual(['a', 'b', 'c']);
    expect(first.x.buffer).not.toBe(ds.x.buffer);
    expect(ids(takeFirst(ds, 99))).toHaveLength(10);
    const mid = sliceDataset(ds, 3, 6);
    expect(ids(mid)).toEqual([3, 4, 5]);
    expect(Array.from(mid.labels)).toEqual([0, 1, 2]);
    expectParryError(() => sliceDataset(ds, 5, 2), 'BAD_OPTION', 'sliceDataset', '2');
    expectParryError(() => takeFirst(ds, -1), 'BAD_OPTION', 'takeFirst', '-1');
  });

  it('selectExamples gathers rows in the given order', () => {
    const ds = selectExamples(tiny(5), [4, 0, 4]);
    expect(ids(ds)).toEqual([4, 0, 4]);
    expect(Array.from(ds.x.subarray(0, 2))).toEqual([4, 4.5]);
    expectParryError(() => selectExamples(tiny(5), [5]), 'BAD_OPTION', 'index 5');
  });

  it('shuffleDataset is a seeded permutation that keeps rows with their labels', () => {
    const ds = tiny(20);
    const a = shuffleDataset(ds, new Rng(1));
    expect(ids(shuffleDataset(ds, new Rng(1)))).toEqual(ids(a));
    expect(ids(a)).not.toEqual(ids(ds));
    expect([...ids(a)].sort((p, q) => p - q)).toEqual(ids(ds));
    ids(a).forEach((id, i) => {
      expect(a.labels[i]).toBe(id % 3);
      expect(a.x[2 * i + 1]).toBe(id + 0.5);
    });
  });

  it('splitDataset partitions the examples', () => {
    const ds = tiny(20);
    const { train, validation } = splitDataset(ds, 0.25, new Rng(3));
    expect(validation.labels.length).toBe(5);
    expect(train.labels.length).toBe(15);
    expect([...ids(train), ...ids(validation)].sort((p, q) => p - q)).toEqual(ids(ds));
    expect(validation.name).toBe('tiny#validation');
    expectParryError(() => splitDataset(ds, 1.5, new Rng(3)), 'BAD_OPTION', 'fraction', '1.5');
  });

  it('stratifiedIndices takes perClass of each class, sorted, reproducibly', () => {
    const labels = Int32Array.from({ length: 30 }, (_, i) => i % 3);
    const picked = stratifiedIndices(labels, 3, 4, new Rng(5));
    expect(picked).toEqual(stratifiedIndices(labels, 3, 4, new Rng(5)));
    expect(picked.length).toBe(12);
    expect(Array.from(picked)).toEqual([...picked].sort((p, q) => p - q));
    expect(new Set(picked).size).toBe(12);
    expect(
      classCounts(
        Int32Array.from(picked, (i) => labels[i]),
        3,
      ),
    ).toEqual([4, 4, 4]);
    expectParryError(
      () => stratifiedIndices(labels, 3, 11, new Rng(5)),
      'BAD_OPTION',
      'class 0 has 10',
    );
  });

  it('rejects an inconsistent data set', () => {
    const ds = { ...tiny(4), labels: new Int32Array(3) };
    expectParryError(() => takeFirst(ds, 2), 'BAD_INPUT', 'tiny', '3 labels but 4 examples');
  });
});
