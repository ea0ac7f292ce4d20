import { describe, expect, it } from 'vitest';
import { syntheticDataset } from '../../src/data/synthetic.js';
import { classCounts, expectParryError } from './helpers.js';

const base = { shape: [6, 6, 2], numClasses: 4, n: 200, seed: 11 };

describe('syntheticDataset', () => {
  it('is reproducible from its seed and differs across seeds', () => {
    const a = syntheticDataset(base);
    const b = syntheticDataset(base);
    const c = syntheticDataset({ ...base, seed: 12 });
    expect(b.x).toEqual(a.x);
    expect(b.labels).toEqual(a.labels);
    expect(c.x).not.toEqual(a.x);
  });

  it('has the requested shape, balanced labels and values in [0, 1]', () => {
    const ds = syntheticDataset({ ...base, n: 202, noise: 0.5 });
    expect(ds.shape).toEqual([202, 6, 6, 2]);
    expect(ds.x.length).toBe(202 * 72);
    expect(ds.numClasses).toBe(4);
    expect(classCounts(ds.labels, 4)).toEqual([51, 51, 50, 50]);
    expect(Math.min(...ds.x)).toBe(0);
    expect(Math.max(...ds.x)).toBe(1);
  });

  it('train and test share prototypes but not noise, so a nearest-mean rule transfers', () => {
    const train = syntheticDataset(base);
    const test = syntheticDataset({ ...base, split: 'test' });
    expect(test.x).not.toEqual(train.x);
    const size = 72;
    const means = new Float64Array(4 * size);
    const counts = classCounts(train.labels, 4);
    train.labels.forEach((l, i) => {
      for (let j = 0; j < size; j++) means[l * size + j] += train.x[i * size + j] / counts[l];
    });
    let correct = 0;
    test.labels.forEach((l, i) => {
      let best = -1;
      let bestDist = Infinity;
      for (let k = 0; k < 4; k++) {
        let d = 0;
        for (let j = 0; j < size; j++) d += (test.x[i * size + j] - means[k * size + j]) ** 2;
        if (d < bestDist) [best, bestDist] = [k, d];
      }
      if (best === l) correct++;
    });
    expect(correct / test.labels.length).toBeGreaterThan(0.95);
  });

  it('rejects bad options with BAD_OPTION', () => {
    expectParryError(
      () => syntheticDataset({ ...base, shape: [6, 6] }),
      'BAD_OPTION',
      'shape',
      '[6, 6]',
    );
    expectParryError(
      () => syntheticDataset({ ...base, numClasses: 1 }),
      'BAD_OPTION',
      'numClasses',
      '1',
    );
    expectParryError(() => syntheticDataset({ ...base, n: 1.5 }), 'BAD_OPTION', 'n must', '1.5');
    expectParryError(() => syntheticDataset({ ...base, seed: -1 }), 'BAD_OPTION', 'seed', '-1');
    expectParryError(
      () => syntheticDataset({ ...base, noise: Number.NaN }),
      'BAD_OPTION',
      'noise',
      'NaN',
    );
  });
});
