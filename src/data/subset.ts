/**
 * The Fashion-MNIST subset committed under `data/fashion-mnist-subset/` so the demo and the tests
 * run without the Debian package: 2,000 train images (200 per class, from the official train
 * split) and 1,000 test images (100 per class, from the official test split), picked with a fixed
 * seed by `scripts/make-fmnist-subset.mjs` (its `manifest.json` lists the source indices).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../engine/paths.js';
import { ParryError } from '../errors.js';
import type { Dataset, Split } from './dataset.js';
import { FASHION_MNIST_CLASSES, loadMnistFormat, mnistFiles } from './mnist.js';

export const FASHION_MNIST_SUBSET = 'data/fashion-mnist-subset';

/** Absolute path of the bundled subset's folder. */
export function fashionMnistSubsetDir(): string {
  return join(packageRoot(), FASHION_MNIST_SUBSET);
}

/** The bundled subset: [2000, 28, 28, 1] train or [1000, 28, 28, 1] test, in [0, 1]. */
export function loadFashionMnistSubset(split: Split): Dataset {
  const dir = fashionMnistSubsetDir();
  const [images, labels] = mnistFiles(split).map((base) => join(dir, `${base}.gz`));
  for (const path of [images, labels]) {
    if (!existsSync(path)) {
      throw new ParryError(
        'BAD_FILE',
        `loadFashionMnistSubset: ${path} not found; rebuild it with 'node scripts/make-fmnist-subset.mjs' (see its header)`,
      );
    }
  }
  return loadMnistFormat(images, labels, `fashion-mnist-subset/${split}`, {
    classNames: FASHION_MNIST_CLASSES,
  });
}
