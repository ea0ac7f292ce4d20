import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/dataset.js';
import { writeIdx } from '../../src/data/idx.js';
import {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  loadFashionMnist,
  loadMnistDir,
  loadMnistFormat,
} from '../../src/data/mnist.js';
import { fashionMnistSubsetDir, loadFashionMnistSubset } from '../../src/data/subset.js';
import { packageRoot } from '../../src/engine/paths.js';
import { classCounts, expectParryError, tempDir } from './helpers.js';

const dir = tempDir();

/** Writes a 3-image 2x2 MNIST-format pair; pixel values 0, 51, ..., 255 cycle through. */
function writePair(
  folder: string,
  prefix: string,
  opts: { gzip?: boolean; labels?: number[] } = {},
) {
  mkdirSync(folder, { recursive: true });
  const pixels = Uint8Array.from({ length: 12 }, (_, i) => (i % 6) * 51);
  const labels = Uint8Array.from(opts.labels ?? [3, 0, 9]);
  const suffix = opts.gzip ? '.gz' : '';
  const images = join(folder, `${prefix}-images-idx3-ubyte${suffix}`);
  const labelsPath = join(folder, `${prefix}-labels-idx1-ubyte${suffix}`);
  writeIdx(images, { dims: [3, 2, 2], data: pixels }, opts);
  writeIdx(labelsPath, { dims: [labels.length], data: labels }, opts);
  return { images, labels: labelsPath };
}

function expectUnitRange(ds: Dataset) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of ds.x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  expect(lo).toBeGreaterThanOrEqual(0);
  expect(hi).toBeLessThanOrEqual(1);
  expect(hi).toBeGreaterThan(0.9);
}

describe('loadMnistFormat', () => {
  it('scales bytes to [0, 1] and adds the channel axis', () => {
    const files = writePair(join(dir, 'pair'), 'train');
    const ds = loadMnistFormat(files.images, files.labels, 'tiny');
    expect(ds.shape).toEqual([3, 2, 2, 1]);
    expect(ds.name).toBe('tiny');
    expect(ds.numClasses).toBe(10);
    expect(Array.from(ds.labels)).toEqual([3, 0, 9]);
    expect(ds.x[0]).toBe(0);
    expect(ds.x[1]).toBe(Math.fround(0.2));
    expect(ds.x[5]).toBe(1);
  });

  it('rejects an image/label count mismatch naming both files', () => {
    const files = writePair(join(dir, 'mismatch'), 'train', { labels: [1, 2] });
    expectParryError(
      () => loadMnistFormat(files.images, files.labels, 'x'),
      'BAD_FILE',
      'count mismatch',
      files.images,
      files.labels,
      '3 images',
      '2 labels',
    );
  });

  it('rejects labels outside [0, numClasses)', () => {
    const files = writePair(join(dir, 'range'), 'train', { labels: [1, 12, 0] });
    expectParryError(
      () => loadMnistFormat(files.images, files.labels, 'x'),
      'BAD_FILE',
      files.labels,
      'label 12 at index 1',
    );
    expect(loadMnistFormat(files.images, files.labels, 'x', { numClasses: 13 }).numClasses).toBe(
      13,
    );
  });
});

describe('loadMnistDir', () => {
  it('finds plain and gzipped files', () => {
    const folder = join(dir, 'mixed');
    writePair(folder, 'train', { gzip: true });
    writePair(folder, 't10k');
    expect(loadMnistDir(folder, 'train', 'm/train').shape).toEqual([3, 2, 2, 1]);
    expect(loadMnistDir(folder, 'test', 'm/test').labels.length).toBe(3);
  });

  it('names the missing directory or file', () => {
    const missing = join(dir, 'absent');
    expectParryError(() => loadMnistDir(missing, 'test', 'x'), 'BAD_FILE', missing, 'not found');
    const half = join(dir, 'half');
    writePair(half, 'train');
    expectParryError(
      () => loadMnistDir(half, 'test', 'x'),
      'BAD_FILE',
      half,
      't10k-images-idx3-ubyte',
    );
  });
});

describe('loadFashionMnist', () => {
  it('points at the Debian package and the subset when the files are absent', () => {
    const missing = join(dir, 'no-fmnist');
    expectParryError(
      () => loadFashionMnist('test', { dir: missing }),
      'BAD_FILE',
      'loadFashionMnist',
      join(missing, 't10k-images-idx3-ubyte.gz'),
      'apt-get install dataset-fashion-mnist',
      'fashion-mnist-subset',
    );
  });

  it.skipIf(!existsSync(FASHION_MNIST_DIR))('loads the full Debian set (60000 / 10000)', () => {
    const test = loadFashionMnist('test');
    expect(test.shape).toEqual([10000, 28, 28, 1]);
    expect(test.name).toBe('fashion-mnist/test');
    expect(test.classNames).toEqual(FASHION_MNIST_CLASSES);
    expect(classCounts(test.labels, 10)).toEqual(new Array(10).fill(1000));
    expectUnitRange(test);
    const train = loadFashionMnist('train');
    expect(train.shape).toEqual([60000, 28, 28, 1]);
    expect(train.x.length).toBe(60000 * 784);
    expect(classCounts(train.labels, 10)).toEqual(new Array(10).fill(6000));
  });
});

describe('bundled Fashion-MNIST subset', () => {
  it('is found from the package root', () => {
    expect(existsSync(join(packageRoot(), 'package.json'))).toBe(true);
    expect(existsSync(fashionMnistSubsetDir())).toBe(true);
  });

  it.each([
    ['train', 2000, 200],
    ['test', 1000, 100],
  ] as const)('%s: %i images, %i per class, values in [0, 1]', (split, n, perClass) => {
    const ds = loadFashionMnistSubset(split);
    expect(ds.name).toBe(`fashion-mnist-subset/${split}`);
    expect(ds.shape).toEqual([n, 28, 28, 1]);
    expect(ds.x.length).toBe(n * 784);
    expect(ds.numClasses).toBe(10);
    expect(ds.classNames).toEqual(FASHION_MNIST_CLASSES);
    expect(classCounts(ds.labels, 10)).toEqual(new Array(10).fill(perClass));
    expectUnitRange(ds);
  });

  it.skipIf(!existsSync(FASHION_MNIST_DIR))(
    'rows match the source indices in manifest.json',
    () => {
      const manifest = JSON.parse(
        readFileSync(join(fashionMnistSubsetDir(), 'manifest.json'), 'utf8'),
      );
      for (const split of ['train', 'test'] as const) {
        const full = loadFashionMnist(split);
        const subset = loadFashionMnistSubset(split);
        const indices: number[] = manifest.indices[split];
        expect(indices.length).toBe(subset.labels.length);
        let wrong = 0;
        indices.forEach((src, i) => {
          if (subset.labels[i] !== full.labels[src]) wrong++;
          for (let j = 0; j < 784; j++) {
            if (subset.x[i * 784 + j] !== full.x[src * 784 + j]) wrong++;
          }
        });
        expect(wrong).toBe(0);
      }
    },
  );
});
