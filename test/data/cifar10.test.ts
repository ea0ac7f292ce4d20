import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CIFAR10_CLASSES, cifar10Files, loadCifar10 } from '../../src/data/cifar10.js';
import { expectParryError, tempDir } from './helpers.js';

const RECORD = 3073;
const dir = tempDir();

/** `n` records: label = (seed + r) % 10; one marked pixel per record, rest zero. */
function records(n: number, seed: number): Buffer {
  const buf = Buffer.alloc(n * RECORD);
  for (let r = 0; r < n; r++) {
    buf[r * RECORD] = (seed + r) % 10;
    // channel c=1 (G), row y=2, column x=5 -> CHW offset 1*1024 + 2*32 + 5
    buf[r * RECORD + 1 + 1024 + 2 * 32 + 5] = 51;
    // channel c=2 (B), row y=31, column x=31
    buf[r * RECORD + 1 + 2048 + 31 * 32 + 31] = 255;
  }
  return buf;
}

function writeSet(folder: string) {
  mkdirSync(folder, { recursive: true });
  cifar10Files('train').forEach((f, i) => {
    writeFileSync(join(folder, f), records(2, i));
  });
  writeFileSync(join(folder, 'test_batch.bin'), records(3, 7));
}

describe('loadCifar10', () => {
  const folder = join(dir, 'cifar');
  writeSet(folder);

  it('reorders CHW planes into NHWC and scales to [0, 1]', () => {
    const ds = loadCifar10(folder, 'test');
    expect(ds.shape).toEqual([3, 32, 32, 3]);
    expect(ds.name).toBe('cifar10/test');
    expect(ds.classNames).toEqual(CIFAR10_CLASSES);
    expect(Array.from(ds.labels)).toEqual([7, 8, 9]);
    const at = (n: number, y: number, x: number, c: number) =>
      ds.x[((n * 32 + y) * 32 + x) * 3 + c];
    for (let n = 0; n < 3; n++) {
      expect(at(n, 2, 5, 1)).toBe(Math.fround(0.2));
      expect(at(n, 31, 31, 2)).toBe(1);
      expect(at(n, 2, 5, 0)).toBe(0);
      expect(at(n, 5, 2, 1)).toBe(0);
    }
    let nonZero = 0;
    for (const v of ds.x) if (v !== 0) nonZero++;
    expect(nonZero).toBe(6);
  });

  it('concatenates the five train batches in order', () => {
    const ds = loadCifar10(folder, 'train');
    expect(ds.shape).toEqual([10, 32, 32, 3]);
    expect(Array.from(ds.labels)).toEqual([0, 1, 1, 2, 2, 3, 3, 4, 4, 5]);
  });

  it('accepts the folder the tarball was unpacked in', () => {
    const outer = join(dir, 'unpacked');
    writeSet(join(outer, 'cifar-10-batches-bin'));
    expect(loadCifar10(outer, 'test').labels.length).toBe(3);
  });

  it('names a missing directory or file', () => {
    const missing = join(dir, 'absent');
    expectParryError(
      () => loadCifar10(missing, 'test'),
      'BAD_FILE',
      'loadCifar10',
      missing,
      'not found',
    );
    const partial = join(dir, 'partial');
    mkdirSync(partial);
    writeFileSync(join(partial, 'test_batch.bin'), records(1, 0));
    expectParryError(
      () => loadCifar10(partial, 'train'),
      'BAD_FILE',
      join(partial, 'data_batch_1.bin'),
      'not found',
    );
  });

  it('rejects a size that is not a multiple of 3073', () => {
    const bad = join(dir, 'bad');
    mkdirSync(bad);
    const path = join(bad, 'test_batch.bin');
    writeFileSync(path, records(2, 0).subarray(0, 2 * RECORD - 1));
    expectParryError(() => loadCifar10(bad, 'test'), 'BAD_FILE', path, 'size 6145', '3073');
  });

  it('rejects a label byte above 9', () => {
    const bad = join(dir, 'label');
    mkdirSync(bad);
    const buf = records(2, 0);
    buf[RECORD] = 10;
    writeFileSync(join(bad, 'test_batch.bin'), buf);
    expectParryError(() => loadCifar10(bad, 'test'), 'BAD_FILE', 'label 10 in record 1');
  });
});
