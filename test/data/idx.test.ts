import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  decodeIdx,
  encodeIdx,
  type IdxData,
  readIdx,
  readIdxImages,
  readIdxLabels,
  writeIdx,
} from '../../src/data/idx.js';
import { expectParryError, tempDir } from './helpers.js';

const dir = tempDir();

const arrays: { name: string; dims: number[]; data: IdxData }[] = [
  { name: 'uint8', dims: [2, 3, 4], data: Uint8Array.from({ length: 24 }, (_, i) => i * 10) },
  { name: 'int8', dims: [5], data: Int8Array.from([-128, -1, 0, 1, 127]) },
  { name: 'int16', dims: [2, 2], data: Int16Array.from([-32768, -2, 300, 32767]) },
  { name: 'int32', dims: [3], data: Int32Array.from([-2147483648, 65536, 2147483647]) },
  { name: 'float32', dims: [1, 3], data: Float32Array.from([-1.5, 0.1, 3e38]) },
  { name: 'float64', dims: [2], data: Float64Array.from([Math.PI, -1e-300]) },
  { name: 'empty', dims: [0, 28, 28], data: new Uint8Array(0) },
];

describe('idx', () => {
  for (const gzip of [false, true]) {
    it.each(arrays)(`round-trips $name (gzip ${gzip})`, ({ name, dims, data }) => {
      const path = join(dir, `${name}-${gzip}.idx`);
      writeIdx(path, { dims, data }, { gzip });
      const raw = readFileSync(path);
      expect(raw[0] === 0x1f && raw[1] === 0x8b).toBe(gzip);
      const back = readIdx(path);
      expect(back.dims).toEqual(dims);
      expect(back.dtype).toBe(name === 'empty' ? 'uint8' : name);
      expect(back.data.constructor).toBe(data.constructor);
      expect(Array.from(back.data)).toEqual(Array.from(data));
    });
  }

  it('writes big-endian headers and elements', () => {
    const bytes = encodeIdx({ dims: [2], data: Int16Array.from([1, -2]) });
    expect(Array.from(bytes)).toEqual([0, 0, 0x0b, 1, 0, 0, 0, 2, 0, 1, 0xff, 0xfe]);
    const images = encodeIdx({ dims: [1, 1, 2], data: Uint8Array.from([7, 9]) });
    expect(Array.from(images.subarray(0, 4))).toEqual([0, 0, 8, 3]);
  });

  it('detects gzip by content, not by file name', () => {
    const plainNamedGz = join(dir, 'plain.gz');
    const gzNamedPlain = join(dir, 'gzipped.idx');
    const arr = { dims: [3], data: Uint8Array.from([1, 2, 3]) };
    writeIdx(plainNamedGz, arr);
    writeIdx(gzNamedPlain, arr, { gzip: true });
    expect(Array.from(readIdxLabels(plainNamedGz))).toEqual([1, 2, 3]);
    expect(Array.from(readIdxLabels(gzNamedPlain))).toEqual([1, 2, 3]);
  });

  it('reads MNIST images and labels with their magic numbers', () => {
    const imagesPath = join(dir, 'images.idx');
    writeIdx(imagesPath, { dims: [2, 2, 3], data: Uint8Array.from({ length: 12 }, (_, i) => i) });
    const images = readIdxImages(imagesPath);
    expect(images.dims).toEqual([2, 2, 3]);
    expect(images.data[11]).toBe(11);
  });

  it('gzip output is deterministic', () => {
    const arr = { dims: [4], data: Uint8Array.from([4, 3, 2, 1]) };
    writeIdx(join(dir, 'a.gz'), arr, { gzip: true });
    writeIdx(join(dir, 'b.gz'), arr, { gzip: true });
    expect(readFileSync(join(dir, 'a.gz'))).toEqual(readFileSync(join(dir, 'b.gz')));
  });
});

describe('idx errors name the file', () => {
  const labels = encodeIdx({ dims: [4], data: Uint8Array.from([0, 1, 2, 3]) });
  const images = encodeIdx({ dims: [2, 2, 2], data: new Uint8Array(8) });
  const put = (name: string, bytes: Uint8Array) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };

  it('missing file', () => {
    const path = join(dir, 'nope-idx1-ubyte.gz');
    expectParryError(() => readIdx(path), 'BAD_FILE', 'readIdx', path, 'not found');
    expectParryError(() => readIdxImages(path), 'BAD_FILE', 'readIdxImages', path);
  });

  it('a directory instead of a file', () => {
    expectParryError(() => readIdx(dir), 'BAD_FILE', dir, 'directory');
  });

  it('wrong magic number', () => {
    const png = put('image.png', Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0]));
    expectParryError(() => readIdx(png), 'BAD_FILE', png, 'wrong magic number 0x89504e47');
    const labelsPath = put('labels-as-images', labels);
    expectParryError(
      () => readIdxImages(labelsPath),
      'BAD_FILE',
      'readIdxImages',
      labelsPath,
      'wrong magic number 0x00000801, expected 0x00000803',
    );
    const imagesPath = put('images-as-labels', images);
    expectParryError(
      () => readIdxLabels(imagesPath),
      'BAD_FILE',
      imagesPath,
      'expected 0x00000801',
    );
  });

  it('unsupported dtype code', () => {
    const path = put('dtype', Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 1, 5]));
    expectParryError(() => readIdx(path), 'BAD_FILE', path, 'unsupported idx dtype code 0xa');
  });

  it('truncated data, plain and gzipped', () => {
    const cut = images.subarray(0, images.length - 3);
    const plain = put('truncated', cut);
    expectParryError(
      () => readIdxImages(plain),
      'BAD_FILE',
      plain,
      'truncated',
      'need 24 bytes, file has 21',
    );
    const gz = put('truncated.gz', gzipSync(cut));
    expectParryError(() => readIdx(gz), 'BAD_FILE', gz, 'truncated');
  });

  it('truncated header and too-short files', () => {
    const header = put('header', images.subarray(0, 9));
    expectParryError(() => readIdx(header), 'BAD_FILE', header, 'truncated', 'header of 3 dims');
    const tiny = put('tiny', Uint8Array.from([0, 0]));
    expectParryError(() => readIdx(tiny), 'BAD_FILE', tiny, 'truncated');
  });

  it('bytes beyond what the dims describe', () => {
    const long = new Uint8Array(labels.length + 2);
    long.set(labels);
    const path = put('long', long);
    expectParryError(() => readIdxLabels(path), 'BAD_FILE', path, '2 bytes after the data');
  });

  it('corrupt gzip stream', () => {
    const gz = gzipSync(labels);
    const path = put('corrupt.gz', gz.subarray(0, gz.length - 10));
    expectParryError(() => readIdx(path), 'BAD_FILE', path, 'corrupt gzip');
  });

  it('decodeIdx names its source', () => {
    expectParryError(
      () => decodeIdx(Uint8Array.from([1, 2, 3, 4]), 'in-memory'),
      'BAD_FILE',
      'in-memory',
    );
  });

  it('writer rejects dims that do not match the data', () => {
    expectParryError(
      () => encodeIdx({ dims: [3, 3], data: new Uint8Array(8) }),
      'BAD_OPTION',
      'encodeIdx',
      '[3, 3]',
    );
  });
});
