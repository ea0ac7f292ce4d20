/** Small data sets and checks shared by the poisoning tests. */
import { expect } from 'vitest';
import type { Dataset } from '../../../src/data/dataset.js';
import { syntheticDataset } from '../../../src/data/synthetic.js';
import { ParryError, type ParryErrorCode } from '../../../src/errors.js';

/**
 * A synthetic [n, 8, 8, 1] set with `k` balanced classes, its values on the 1/255 grid (as a set
 * read from idx files is), so an idx round trip is exact.
 */
export function gridData(n = 60, k = 3, seed = 1, split: 'train' | 'test' = 'train'): Dataset {
  const ds = syntheticDataset({ shape: [8, 8, 1], numClasses: k, n, seed, noise: 0.15, split });
  for (let i = 0; i < ds.x.length; i++) ds.x[i] = Math.round(ds.x[i] * 255) / 255;
  return ds;
}

/** What `f` threw (or rejected with): a one-line ParryError of `code` whose message has every part. */
export async function expectError(
  f: () => unknown,
  code: ParryErrorCode,
  ...parts: string[]
): Promise<ParryError> {
  let thrown: unknown;
  try {
    await f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(ParryError);
  const err = thrown as ParryError;
  expect(err.code).toBe(code);
  expect(err.message).not.toContain('\n');
  for (const part of parts) expect(err.message).toContain(part);
  return err;
}

/** A BAD_OPTION naming `option` as its first issue's path. */
export async function expectBadOption(f: () => unknown, option: string): Promise<ParryError> {
  const err = await expectError(f, 'BAD_OPTION', option);
  expect(err.issues[0]?.path[0]).toBe(option);
  return err;
}

/** Indices where two label arrays differ. */
export function changedLabels(a: Int32Array, b: Int32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** Indices of examples whose images differ. */
export function changedImages(a: Dataset, b: Dataset): number[] {
  const size = a.shape[1] * a.shape[2] * a.shape[3];
  const out: number[] = [];
  for (let i = 0; i < a.shape[0]; i++) {
    for (let j = 0; j < size; j++) {
      if (a.x[i * size + j] !== b.x[i * size + j]) {
        out.push(i);
        break;
      }
    }
  }
  return out;
}

/** Every value in [0, 1]. */
export function expectUnitRange(x: Float32Array): void {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  expect(lo).toBeGreaterThanOrEqual(0);
  expect(hi).toBeLessThanOrEqual(1);
}

/** One example's values. */
export function example(ds: Dataset, i: number): Float32Array {
  const size = ds.shape[1] * ds.shape[2] * ds.shape[3];
  return ds.x.subarray(i * size, (i + 1) * size);
}
