/**
 * The idx format of MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/) and its drop-in
 * successors (Fashion-MNIST, KMNIST, EMNIST): a 4-byte magic number — two zero bytes, an element
 * type code, the number of dimensions — then each dimension as a big-endian uint32, then the
 * elements, big-endian, row-major. Files may be gzipped; that is detected from the 1f 8b magic
 * bytes, not from the name.
 *
 * Every error is a one-line ParryError('BAD_FILE') naming the function and the file.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ParryError } from '../errors.js';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Float32Array
  | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  /** Row-major elements, length = product of dims. */
  data: IdxData;
}

/** The magic numbers of MNIST's two file kinds. */
export const IDX_LABELS_MAGIC = 0x00000801; // uint8, 1 dim [n]
export const IDX_IMAGES_MAGIC = 0x00000803; // uint8, 3 dims [n, h, w]

const DTYPES: { code: number; dtype: IdxDtype; bytes: number }[] = [
  { code: 0x08, dtype: 'uint8', bytes: 1 },
  { code: 0x09, dtype: 'int8', bytes: 1 },
  { code: 0x0b, dtype: 'int16', bytes: 2 },
  { code: 0x0c, dtype: 'int32', bytes: 4 },
  { code: 0x0d, dtype: 'float32', bytes: 4 },
  { code: 0x0e, dtype: 'float64', bytes: 8 },
];

/** Reads a file's bytes, gunzipping them when they start with the gzip magic 1f 8b. */
export function readMaybeGzip(path: string, fn: string): Uint8Array {
  let raw: Buffer;
  try {
    if (statSync(path).isDirectory()) badFile(fn, path, 'is a directory, expected a file');
    raw = readFileSync(path);
  } catch (e) {
    if (e instanceof ParryError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(e)})`;
    throw new ParryError('BAD_FILE', `${fn}: ${path}: ${what}`, { cause: e });
  }
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    return gunzipSync(raw);
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `${fn}: ${path}: corrupt gzip data (${(e as Error).message})`,
      { cause: e },
    );
  }
}

/** Parses idx bytes; `source` names the file in errors. */
export function decodeIdx(bytes: Uint8Array, source: string, fn = 'readIdx'): IdxArray {
  if (bytes.length < 4) {
    badFile(fn, source, `truncated: ${bytes.length} bytes, too short for the idx magic number`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    badFile(fn, source, `wrong magic number ${hex(magic)}: not an idx file (expected 0x0000TTDD)`);
  }
  const type = DTYPES.find((t) => t.code === bytes[2]);
  if (!type) {
    const known = DTYPES.map((t) => `0x${t.code.toString(16).padStart(2, '0')}`).join(', ');
    badFile(fn, source, `unsupported idx dtype code 0x${bytes[2].toString(16)} (known: ${known})`);
  }
  const rank = bytes[3];
  const header = 4 + 4 * rank;
  if (bytes.length < header) {
    badFile(
      fn,
      source,
      `truncated: ${bytes.length} bytes, the header of ${rank} dims needs ${header}`,
    );
  }
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const need = header + count * type.bytes;
  if (bytes.length < need) {
    badFile(
      fn,
      source,
      `truncated: dims [${dims.join(', ')}] need ${need} bytes, file has ${bytes.length}`,
    );
  }
  if (bytes.length > need) {
    badFile(
      fn,
      source,
      `${bytes.length - need} bytes after the data that dims [${dims.join(', ')}] describe`,
    );
  }
  return { dtype: type.dtype, dims, data: decodeElements(view, header, count, type.dtype) };
}

/** Reads an idx file (plain or gzipped). */
export function readIdx(path: string): IdxArray {
  return decodeIdx(readMaybeGzip(path, 'readIdx'), path);
}

/** Reads an MNIST image file (magic 0x00000803): uint8 [n, h, w]. */
export function readIdxImages(path: string): { dims: [number, number, number]; data: Uint8Array } {
  const arr = readIdxExpecting(path, IDX_IMAGES_MAGIC, 'readIdxImages', 'uint8 images [n, h, w]');
  return { dims: arr.dims as [number, number, number], data: arr.data as Uint8Array };
}

/** Reads an MNIST label file (magic 0x00000801): uint8 [n]. */
export function readIdxLabels(path: string): Uint8Array {
  return readIdxExpecting(path, IDX_LABELS_MAGIC, 'readIdxLabels', 'uint8 labels [n]')
    .data as Uint8Array;
}

/** Serialises an array to idx bytes; the dtype follows the typed array's type. */
export function encodeIdx(arr: { dims: number[]; data: IdxData }): Uint8Array {
  const { dims, data } = arr;
  const type = DTYPES.find((t) => t.dtype === dtypeOf(data));
  const count = dims.reduce((a, b) => a * b, 1);
  if (
    !type ||
    dims.length > 255 ||
    !dims.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffffffff)
  ) {
    throw new ParryError(
      'BAD_OPTION',
      `encodeIdx: dims must be up to 255 uint32 values, got [${dims.join(', ')}]`,
    );
  }
  if (count !== data.length) {
    throw new ParryError(
      'BAD_OPTION',
      `encodeIdx: dims [${dims.join(', ')}] hold ${count} elements, data has ${data.length}`,
    );
  }
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + count * type.bytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, (type.code << 8) | dims.length, false);
  for (let i = 0; i < dims.length; i++) view.setUint32(4 + 4 * i, dims[i], false);
  encodeElements(view, header, data, type.dtype);
  return out;
}

/** Writes an idx file; with `gzip` the bytes are gzipped (deterministically: no timestamp). */
export function writeIdx(
  path: string,
  arr: { dims: number[]; data: IdxData },
  opts: { gzip?: boolean } = {},
): void {
  const bytes = encodeIdx(arr);
  writeFileSync(path, opts.gzip ? gzipSync(bytes, { level: 9 }) : bytes);
}

function readIdxExpecting(path: string, magic: number, fn: string, what: string): IdxArray {
  const bytes = readMaybeGzip(path, fn);
  if (bytes.length >= 4) {
    const got = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, false);
    if (got !== magic)
      badFile(fn, path, `wrong magic number ${hex(got)}, expected ${hex(magic)} (${what})`);
  }
  return decodeIdx(bytes, path, fn);
}

/** The multi-byte element types, read and written big-endian as the format requires. */
const WIDE = {
  int16: { make: (n: number) => new Int16Array(n), get: 'getInt16', set: 'setInt16' },
  int32: { make: (n: number) => new Int32Array(n), get: 'getInt32', set: 'setInt32' },
  float32: { make: (n: number) => new Float32Array(n), get: 'getFloat32', set: 'setFloat32' },
  float64: { make: (n: number) => new Float64Array(n), get: 'getFloat64', set: 'setFloat64' },
} as const;

function decodeElements(view: DataView, offset: number, count: number, dtype: IdxDtype): IdxData {
  const src = new Uint8Array(view.buffer, view.byteOffset + offset, count * bytesOf(dtype));
  if (dtype === 'uint8') return src.slice();
  if (dtype === 'int8') return new Int8Array(src.slice().buffer);
  const { make, get } = WIDE[dtype];
  const out = make(count);
  const size = bytesOf(dtype);
  for (let i = 0; i < count; i++) out[i] = view[get](offset + size * i, false);
  return out;
}

function encodeElements(view: DataView, offset: number, data: IdxData, dtype: IdxDtype): void {
  const n = data.length;
  if (dtype === 'uint8' || dtype === 'int8') {
    new Uint8Array(view.buffer, offset).set(new Uint8Array(data.buffer, data.byteOffset, n));
    return;
  }
  const { set } = WIDE[dtype];
  const size = bytesOf(dtype);
  for (let i = 0; i < n; i++) view[set](offset + size * i, data[i], false);
}

function dtypeOf(data: IdxData): IdxDtype | undefined {
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  return undefined;
}

function bytesOf(dtype: IdxDtype): number {
  return DTYPES.find((t) => t.dtype === dtype)!.bytes;
}

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

function badFile(fn: string, path: string, what: string): never {
  throw new ParryError('BAD_FILE', `${fn}: ${path}: ${what}`);
}
