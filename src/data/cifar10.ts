/**
 * CIFAR-10 (Krizhevsky 2009), "binary version" (https://www.cs.toronto.edu/~kriz/cifar.html):
 * `data_batch_1.bin` .. `data_batch_5.bin` (train, 50,000) and `test_batch.bin` (10,000). Each
 * record is 1 label byte then 3,072 bytes: the R, G and B planes of a 32x32 image, each row-major.
 * Records become NHWC [n, 32, 32, 3] float32 in [0, 1] (byte / 255).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ParryError } from '../errors.js';
import type { Dataset, Split } from './dataset.js';

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

const SIDE = 32;
const PLANE = SIDE * SIDE;
const RECORD = 1 + 3 * PLANE;

/** File names of a split, in load order. */
export function cifar10Files(split: Split): string[] {
  return split === 'train' ? [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`) : ['test_batch.bin'];
}

/**
 * Loads a split from `dir`, the folder holding the .bin files (or the folder the tarball was
 * unpacked in, which holds `cifar-10-batches-bin/`).
 */
export function loadCifar10(dir: string, split: Split): Dataset {
  const fn = 'loadCifar10';
  if (!isDir(dir)) {
    throw new ParryError('BAD_FILE', `${fn}: directory not found: ${dir}`);
  }
  const nested = join(dir, 'cifar-10-batches-bin');
  const root = !existsSync(join(dir, cifar10Files(split)[0])) && isDir(nested) ? nested : dir;
  const chunks = cifar10Files(split).map((file) => readCifar10Bytes(join(root, file), fn));
  const n = chunks.reduce((sum, b) => sum + b.length / RECORD, 0);
  const x = new Float32Array(n * 3 * PLANE);
  const labels = new Int32Array(n);
  let offset = 0;
  chunks.forEach((bytes, i) => {
    offset += decodeCifar10Records(bytes, join(root, cifar10Files(split)[i]), x, labels, offset);
  });
  return {
    name: `cifar10/${split}`,
    x,
    shape: [n, SIDE, SIDE, 3],
    labels,
    numClasses: 10,
    classNames: CIFAR10_CLASSES,
  };
}

/** Reads one batch file as raw bytes, checking its size is a whole number of records. */
export function readCifar10Bytes(path: string, fn = 'readCifar10Bytes'): Uint8Array {
  if (!existsSync(path)) {
    throw new ParryError(
      'BAD_FILE',
      `${fn}: ${path}: file not found (expected CIFAR-10's binary version)`,
    );
  }
  const bytes = readFileSync(path);
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    throw new ParryError(
      'BAD_FILE',
      `${fn}: ${path}: size ${bytes.length} bytes is not a positive multiple of the ${RECORD}-byte record`,
    );
  }
  return bytes;
}

/**
 * Decodes whole records into `x` (NHWC, /255) and `labels` from example `offset` on; returns the
 * number of records. Channel planes (CHW) are interleaved into HWC here.
 */
export function decodeCifar10Records(
  bytes: Uint8Array,
  source: string,
  x: Float32Array,
  labels: Int32Array,
  offset: number,
): number {
  const n = bytes.length / RECORD;
  for (let r = 0; r < n; r++) {
    const base = r * RECORD;
    const label = bytes[base];
    if (label > 9) {
      throw new ParryError(
        'BAD_FILE',
        `loadCifar10: ${source}: label ${label} in record ${r} is outside [0, 10)`,
      );
    }
    labels[offset + r] = label;
    const out = (offset + r) * 3 * PLANE;
    for (let c = 0; c < 3; c++) {
      const plane = base + 1 + c * PLANE;
      for (let p = 0; p < PLANE; p++) x[out + 3 * p + c] = bytes[plane + p] / 255;
    }
  }
  return n;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
