import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { ParryError, type ParryErrorCode } from '../../src/errors.js';

/** A fresh temp directory, removed after the test file. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'parry-data-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Asserts `f` throws a one-line ParryError with `code` whose message contains every part. */
export function expectParryError(
  f: () => unknown,
  code: ParryErrorCode,
  ...parts: string[]
): ParryError {
  let thrown: unknown;
  try {
    f();
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

/** Count of each label 0..numClasses-1. */
export function classCounts(labels: Int32Array, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const l of labels) counts[l]++;
  return counts;
}
