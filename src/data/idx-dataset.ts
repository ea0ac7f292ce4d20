/**
 * Writes a data set as the MNIST pair of idx files (`train-images-idx3-ubyte.gz` and
 * `train-labels-idx1-ubyte.gz`, or `t10k-…` for the test split), which `loadDataset('mnist:DIR')`
 * reads back — how a poisoned training set is handed to `parry train`. Values are quantised to
 * bytes (round(255·x)), so a set loaded from idx files round-trips exactly; anything off the
 * 1/255 grid moves by at most 0.5/255.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ParryError } from '../errors.js';
import { checkDataset, type Dataset, type Split } from './dataset.js';
import { writeIdx } from './idx.js';
import { mnistFiles } from './mnist.js';

/** Bytes of [0, 1] values: round(255·x), clamped. */
export function unitToBytes(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.round(x[i] * 255);
    out[i] = Math.min(255, Math.max(0, v));
  }
  return out;
}

/**
 * Writes `ds` (one channel, at most 256 classes) into `dir` (created if missing) as the `split`'s
 * two gzipped idx files; returns their paths `[images, labels]`.
 */
export function writeMnistFormat(ds: Dataset, dir: string, split: Split): [string, string] {
  const fn = 'writeMnistFormat';
  checkDataset(ds, fn);
  const [n, h, w, c] = ds.shape;
  if (c !== 1) {
    throw new ParryError(
      'UNSUPPORTED',
      `${fn}: the MNIST idx format holds one channel, data set '${ds.name}' has ${c}`,
    );
  }
  if (ds.numClasses > 256) {
    throw new ParryError('UNSUPPORTED', `${fn}: idx labels are bytes, ${ds.numClasses} classes`);
  }
  mkdirSync(dir, { recursive: true });
  const [images, labels] = mnistFiles(split).map((base) => join(dir, `${base}.gz`));
  writeIdx(images, { dims: [n, h, w], data: unitToBytes(ds.x) }, { gzip: true });
  writeIdx(labels, { dims: [n], data: Uint8Array.from(ds.labels) }, { gzip: true });
  return [images, labels];
}
