/**
 * A data set held in memory as plain typed arrays: tensors are made per batch by the caller, so
 * loading a set allocates no backend memory and nothing here needs disposing.
 *
 * Helpers that return a smaller or reordered set copy the rows they keep (so a 1,000-example
 * slice of a 60,000-example set does not pin the big buffer); `batches` yields views.
 */

import type { Rng } from '../engine/rng.js';
import { ParryError } from '../errors.js';

export interface Dataset {
  /** e.g. 'fashion-mnist/test'. */
  name: string;
  /** [n, h, w, c] row-major (NHWC), values in [0, 1]. */
  x: Float32Array;
  /** [n, h, w, c]. */
  shape: number[];
  /** [n] class indices in [0, numClasses). */
  labels: Int32Array;
  numClasses: number;
  classNames?: string[];
}

export type Split = 'train' | 'test';

/** One batch: views into the data set's arrays (no copy; do not write into them). */
export interface Batch {
  /** [batch, h, w, c]. */
  x: Float32Array;
  shape: number[];
  labels: Int32Array;
  /** Index of the batch's first example in the data set. */
  start: number;
}

/** Number of examples. */
export function datasetSize(ds: Dataset): number {
  return ds.shape[0];
}

/** Values per example (h * w * c). */
export function exampleSize(ds: Dataset): number {
  return ds.shape[1] * ds.shape[2] * ds.shape[3];
}

/** Checks that shape, x and labels agree; throws BAD_INPUT naming `fn` otherwise. */
export function checkDataset(ds: Dataset, fn: string): void {
  const { shape } = ds;
  const fail = (what: string) => {
    throw new ParryError('BAD_INPUT', `${fn}: data set '${ds.name}' ${what}`);
  };
  if (shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    fail(`shape must be [n, h, w, c] of non-negative integers, got [${shape.join(', ')}]`);
  }
  if (ds.x.length !== shape[0] * shape[1] * shape[2] * shape[3]) {
    fail(`has ${ds.x.length} values but shape [${shape.join(', ')}]`);
  }
  if (ds.labels.length !== shape[0]) {
    fail(`has ${ds.labels.length} labels but ${shape[0]} examples`);
  }
}

/** The examples at `indices`, in that order, copied into a new data set. */
export function selectExamples(ds: Dataset, indices: ArrayLike<number>, name?: string): Dataset {
  checkDataset(ds, 'selectExamples');
  const n = datasetSize(ds);
  const size = exampleSize(ds);
  const x = new Float32Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!Number.isInteger(j) || j < 0 || j >= n) {
      throw new ParryError('BAD_OPTION', `selectExamples: index ${j} outside [0, ${n})`);
    }
    x.set(ds.x.subarray(j * size, (j + 1) * size), i * size);
    labels[i] = ds.labels[j];
  }
  return withRows(ds, x, labels, name ?? ds.name);
}

/** Examples [start, end) copied into a new data set (end is clamped to the size). */
export function sliceDataset(ds: Dataset, start: number, end: number = datasetSize(ds)): Dataset {
  checkDataset(ds, 'sliceDataset');
  const n = datasetSize(ds);
  if (!Number.isInteger(start) || start < 0 || start > n) {
    throw new ParryError(
      'BAD_OPTION',
      `sliceDataset: start must be an integer in [0, ${n}], got ${start}`,
    );
  }
  if (!Number.isInteger(end) || end < start) {
    throw new ParryError(
      'BAD_OPTION',
      `sliceDataset: end must be an integer >= start (${start}), got ${end}`,
    );
  }
  const stop = Math.min(end, n);
  const size = exampleSize(ds);
  const x = ds.x.slice(start * size, stop * size);
  return withRows(ds, x, ds.labels.slice(start, stop), ds.name);
}

/** The first `n` examples (all of them if the set is smaller). */
export function takeFirst(ds: Dataset, n: number): Dataset {
  if (!Number.isInteger(n) || n < 0) {
    throw new ParryError('BAD_OPTION', `takeFirst: n must be a non-negative integer, got ${n}`);
  }
  return sliceDataset(ds, 0, n);
}

/**
 * The first `n` examples, refusing an `n` the set cannot give (where `takeFirst` would quietly
 * return fewer): `what` names the option in the message.
 */
export function firstExamples(ds: Dataset, n: number, what = 'n'): Dataset {
  const size = datasetSize(ds);
  if (n > size) {
    throw new ParryError(
      'BAD_OPTION',
      `${what} ${n} is more than the ${size} examples of ${ds.name}`,
    );
  }
  return takeFirst(ds, n);
}

/** All examples in an order drawn from `rng`, copied. */
export function shuffleDataset(ds: Dataset, rng: Rng): Dataset {
  return selectExamples(ds, rng.permutation(datasetSize(ds)));
}

/**
 * Holds out a random `fraction` of the examples (rounded) for validation; the rest is for
 * training. Both parts are copies, in the shuffled order.
 */
export function splitDataset(
  ds: Dataset,
  fraction: number,
  rng: Rng,
): { train: Dataset; validation: Dataset } {
  if (!(fraction >= 0 && fraction <= 1)) {
    throw new ParryError('BAD_OPTION', `splitDataset: fraction must be in [0, 1], got ${fraction}`);
  }
  const n = datasetSize(ds);
  const order = rng.permutation(n);
  const held = Math.round(n * fraction);
  return {
    train: selectExamples(ds, order.subarray(held), `${ds.name}#train`),
    validation: selectExamples(ds, order.subarray(0, held), `${ds.name}#validation`),
  };
}

/** Consecutive batches covering every example once; the last one may be smaller. */
export function* batches(ds: Dataset, batchSize: number): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new ParryError(
      'BAD_OPTION',
      `batches: batchSize must be a positive integer, got ${batchSize}`,
    );
  }
  checkDataset(ds, 'batches');
  const n = datasetSize(ds);
  const size = exampleSize(ds);
  const [, h, w, c] = ds.shape;
  for (let start = 0; start < n; start += batchSize) {
    const stop = Math.min(start + batchSize, n);
    yield {
      x: ds.x.subarray(start * size, stop * size),
      shape: [stop - start, h, w, c],
      labels: ds.labels.subarray(start, stop),
      start,
    };
  }
}

/**
 * For each class 0..numClasses-1, `perClass` indices drawn without replacement from `rng`;
 * returned sorted ascending, so the pick keeps the source's order of examples.
 */
export function stratifiedIndices(
  labels: ArrayLike<number>,
  numClasses: number,
  perClass: number,
  rng: Rng,
): Int32Array {
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]]?.push(i);
  const picked: number[] = [];
  byClass.forEach((members, k) => {
    if (members.length < perClass) {
      throw new ParryError(
        'BAD_OPTION',
        `stratifiedIndices: class ${k} has ${members.length} examples, fewer than perClass = ${perClass}`,
      );
    }
    const order = rng.permutation(members.length);
    for (let i = 0; i < perClass; i++) picked.push(members[order[i]]);
  });
  return Int32Array.from(picked).sort();
}

/** Bytes 0..255 -> [0, 1] as float32 (v / 255, correctly rounded). */
export function bytesToUnit(bytes: Uint8Array): Float32Array {
  const lut = new Float32Array(256);
  for (let v = 0; v < 256; v++) lut[v] = v / 255;
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = lut[bytes[i]];
  return out;
}

function withRows(ds: Dataset, x: Float32Array, labels: Int32Array, name: string): Dataset {
  const out: Dataset = {
    name,
    x,
    shape: [labels.length, ds.shape[1], ds.shape[2], ds.shape[3]],
    labels,
    numClasses: ds.numClasses,
  };
  if (ds.classNames) out.classNames = ds.classNames;
  return out;
}
