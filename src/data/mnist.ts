/**
 * MNIST-format data sets: an idx image file (uint8 [n, h, w]) paired with an idx label file
 * (uint8 [n]), as shipped by MNIST, Fashion-MNIST (Xiao et al. 2017) and their kin.
 * Images become [n, h, w, 1] float32 in [0, 1] (byte / 255).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ParryError } from '../errors.js';
import { bytesToUnit, type Dataset, type Split } from './dataset.js';
import { readIdxImages, readIdxLabels } from './idx.js';

/** Where Debian's package `dataset-fashion-mnist` installs the full set. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST's labels 0..9, from the data set's README (zalandoresearch/fashion-mnist). */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

export interface MnistFormatOptions {
  /** Labels must lie in [0, numClasses); default classNames.length, else 10. */
  numClasses?: number;
  classNames?: string[];
}

/** Loads any MNIST-format pair of idx files (each plain or gzipped). */
export function loadMnistFormat(
  imagesPath: string,
  labelsPath: string,
  name: string,
  opts: MnistFormatOptions = {},
): Dataset {
  const fn = 'loadMnistFormat';
  const images = readIdxImages(imagesPath);
  const rawLabels = readIdxLabels(labelsPath);
  const [n, h, w] = images.dims;
  if (rawLabels.length !== n) {
    throw new ParryError(
      'BAD_FILE',
      `${fn}: count mismatch: ${imagesPath} holds ${n} images but ${labelsPath} holds ${rawLabels.length} labels`,
    );
  }
  const numClasses = opts.numClasses ?? opts.classNames?.length ?? 10;
  const labels = Int32Array.from(rawLabels);
  const bad = labels.findIndex((v) => v >= numClasses);
  if (bad >= 0) {
    throw new ParryError(
      'BAD_FILE',
      `${fn}: ${labelsPath}: label ${labels[bad]} at index ${bad} is outside [0, ${numClasses})`,
    );
  }
  const ds: Dataset = {
    name,
    x: bytesToUnit(images.data),
    shape: [n, h, w, 1],
    labels,
    numClasses,
  };
  if (opts.classNames) ds.classNames = opts.classNames;
  return ds;
}

/**
 * Loads a split from a directory holding the standard file names
 * (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, ..., each optionally `.gz`; the
 * `train-images.idx3-ubyte` spelling of some mirrors is accepted too).
 */
export function loadMnistDir(
  dir: string,
  split: Split,
  name: string,
  opts: MnistFormatOptions = {},
): Dataset {
  const fn = 'loadMnistDir';
  if (!isDir(dir)) throw new ParryError('BAD_FILE', `${fn}: directory not found: ${dir}`);
  const files = mnistFiles(split).map((base) => {
    const found = findMnistFile(dir, base);
    if (!found) {
      throw new ParryError('BAD_FILE', `${fn}: ${dir}: no ${base} or ${base}.gz in the directory`);
    }
    return found;
  });
  return loadMnistFormat(files[0], files[1], name, opts);
}

/**
 * Fashion-MNIST from Debian's package `dataset-fashion-mnist` (60,000 train / 10,000 test),
 * or from `opts.dir` holding the same four files.
 */
export function loadFashionMnist(split: Split, opts: { dir?: string } = {}): Dataset {
  const dir = opts.dir ?? FASHION_MNIST_DIR;
  const [images, labels] = mnistFiles(split).map((base) => join(dir, `${base}.gz`));
  for (const path of [images, labels]) {
    if (!existsSync(path)) {
      throw new ParryError(
        'BAD_FILE',
        `loadFashionMnist: ${path} not found; install it with 'apt-get install dataset-fashion-mnist' (or pass the folder holding the four *-ubyte.gz files), or use the bundled subset (fashion-mnist-subset)`,
      );
    }
  }
  return loadMnistFormat(images, labels, `fashion-mnist/${split}`, {
    classNames: FASHION_MNIST_CLASSES,
  });
}

/** The [images, labels] base names of a split, without `.gz`. */
export function mnistFiles(split: Split): [string, string] {
  const prefix = split === 'train' ? 'train' : 't10k';
  return [`${prefix}-images-idx3-ubyte`, `${prefix}-labels-idx1-ubyte`];
}

function findMnistFile(dir: string, base: string): string | undefined {
  const dotted = base.replace(/-(idx\d)-/, '.$1-');
  const candidates = [base, `${base}.gz`, dotted, `${dotted}.gz`].map((f) => join(dir, f));
  return candidates.find((p) => existsSync(p) && !isDir(p));
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
