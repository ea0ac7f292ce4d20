import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cifar10Files } from '../../src/data/cifar10.js';
import { writeIdx } from '../../src/data/idx.js';
import { FASHION_MNIST_DIR, mnistFiles } from '../../src/data/mnist.js';
import { DATASETS, loadDataset } from '../../src/data/registry.js';
import { expectParryError, tempDir } from './helpers.js';

const dir = tempDir();

const mnistDir = join(dir, 'mnist');
mkdirSync(mnistDir);
for (const split of ['train', 'test'] as const) {
  const [images, labels] = mnistFiles(split);
  writeIdx(
    join(mnistDir, `${images}.gz`),
    { dims: [4, 3, 3], data: new Uint8Array(36).fill(255) },
    { gzip: true },
  );
  writeIdx(join(mnistDir, labels), { dims: [4], data: Uint8Array.from([0, 1, 2, 3]) });
}

const cifarDir = join(dir, 'cifar');
mkdirSync(cifarDir);
for (const split of ['train', 'test'] as const) {
  for (const f of cifar10Files(split)) writeFileSync(join(cifarDir, f), new Uint8Array(2 * 3073));
}

describe('loadDataset', () => {
  it('resolves fashion-mnist-subset', () => {
    expect(loadDataset('fashion-mnist-subset', 'test').shape).toEqual([1000, 28, 28, 1]);
  });

  it.skipIf(!existsSync(FASHION_MNIST_DIR))('resolves fashion-mnist (Debian)', () => {
    expect(loadDataset('fashion-mnist', 'test').shape).toEqual([10000, 28, 28, 1]);
  });

  it('passes fashionMnistDir through', () => {
    expectParryError(
      () => loadDataset('fashion-mnist', 'test', { fashionMnistDir: join(dir, 'none') }),
      'BAD_FILE',
      join(dir, 'none'),
      'apt-get install dataset-fashion-mnist',
    );
  });

  it('resolves mnist:DIR', () => {
    const ds = loadDataset(`mnist:${mnistDir}`, 'train');
    expect(ds.shape).toEqual([4, 3, 3, 1]);
    expect(ds.name).toBe(`mnist:${mnistDir}/train`);
    expect(ds.x[0]).toBe(1);
  });

  it('resolves cifar10:DIR', () => {
    expect(loadDataset(`cifar10:${cifarDir}`, 'train').shape).toEqual([10, 32, 32, 3]);
    expect(loadDataset(`cifar10:${cifarDir}`, 'test').shape).toEqual([2, 32, 32, 3]);
  });

  it('resolves synthetic:HxWxC:K[:N], seeded by opts.seed', () => {
    const a = loadDataset('synthetic:8x8x3:5:40', 'train', { seed: 9 });
    expect(a.shape).toEqual([40, 8, 8, 3]);
    expect(a.numClasses).toBe(5);
    expect(loadDataset('synthetic:8x8x3:5:40', 'train', { seed: 9 }).x).toEqual(a.x);
    expect(loadDataset('synthetic:8x8x3:5:40', 'test', { seed: 9 }).x).not.toEqual(a.x);
    expect(loadDataset('synthetic:4x4x1:3', 'test').shape).toEqual([1000, 4, 4, 1]);
  });

  it('every registered name resolves', () => {
    const specs: Record<string, string> = {
      'fashion-mnist': 'fashion-mnist',
      'fashion-mnist-subset': 'fashion-mnist-subset',
      mnist: `mnist:${mnistDir}`,
      cifar10: `cifar10:${cifarDir}`,
      synthetic: 'synthetic:2x2x1:2:4',
    };
    for (const entry of DATASETS) {
      expect(specs[entry.name]).toBeDefined();
      if (entry.name === 'fashion-mnist' && !existsSync(FASHION_MNIST_DIR)) continue;
      expect(loadDataset(specs[entry.name], 'test').labels.length).toBeGreaterThan(0);
    }
  });

  it('rejects unknown names, listing the known ones', () => {
    const err = expectParryError(() => loadDataset('imagenet', 'test'), 'BAD_OPTION', "'imagenet'");
    for (const entry of DATASETS) expect(err.message).toContain(entry.usage);
  });

  it('rejects malformed specs and splits', () => {
    expectParryError(() => loadDataset('mnist', 'test'), 'BAD_OPTION', 'mnist:DIR');
    expectParryError(() => loadDataset('cifar10:', 'test'), 'BAD_OPTION', 'cifar10:DIR');
    expectParryError(
      () => loadDataset('fashion-mnist-subset:x', 'test'),
      'BAD_OPTION',
      'takes no argument',
    );
    expectParryError(() => loadDataset('synthetic:28x28:10', 'test'), 'BAD_OPTION', 'HxWxC');
    expectParryError(() => loadDataset('synthetic:2x2x1:1', 'test'), 'BAD_OPTION', 'numClasses');
    expectParryError(() => loadDataset('synthetic:2x2x1:3:abc', 'test'), 'BAD_OPTION', 'NaN');
    // Impossible allocations are refused up front, not a RangeError from a typed array.
    expectParryError(
      () => loadDataset('synthetic:2x2x1:1000000000', 'test'),
      'BAD_OPTION',
      'numClasses 1000000000 exceeds 100000',
    );
    expectParryError(
      () => loadDataset('synthetic:100000x100000x3:10', 'test'),
      'BAD_OPTION',
      'numClasses 10 × 100000x100000x3',
    );
    expectParryError(
      () => loadDataset('synthetic:512x512x3:10:1000', 'test'),
      'BAD_OPTION',
      'n 1000 × 512x512x3 = 786432000 values exceeds 268435456',
    );
    expectParryError(
      () => loadDataset('synthetic:4x4x1:3', 'val' as 'test'),
      'BAD_OPTION',
      "'val'",
    );
  });
});
