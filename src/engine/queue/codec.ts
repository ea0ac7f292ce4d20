/**
 * Job inputs and outputs as they travel through Redis: JSON, with what JSON loses kept exactly.
 * Typed arrays become `{"$typed": "Float32Array", "base64": ...}` (their bytes, little-endian as
 * in memory), numbers JSON cannot write (NaN, ±Infinity, -0) become `{"$number": "NaN"}`. Object
 * keys are written sorted, so equal values give equal text: the content hash of a job is the hash
 * of that text. What structured clone keeps and this does not: `undefined` object properties are
 * dropped, like JSON does; Maps, Sets, Dates and class instances are refused.
 */
import { createHash } from 'node:crypto';
import { ParryError } from '../../errors.js';

const TYPED = {
  Float32Array,
  Float64Array,
  Int8Array,
  Int16Array,
  Int32Array,
  Uint8Array,
  Uint8ClampedArray,
  Uint16Array,
  Uint32Array,
} as const;
type TypedName = keyof typeof TYPED;

/** `value` as plain JSON data (see the module comment); `where` names it in errors. */
export function encodeValue(value: unknown, where = 'value'): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (Number.isFinite(value) && !Object.is(value, -0)) return value;
    return { $number: Object.is(value, -0) ? '-0' : String(value) };
  }
  if (value === undefined) return null; // only reached inside arrays, as JSON does
  if (ArrayBuffer.isView(value)) {
    const name = value.constructor.name;
    if (!Object.hasOwn(TYPED, name)) {
      throw new ParryError('BAD_INPUT', `queue: ${where} is a ${name}, which jobs cannot carry`);
    }
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return { $typed: name, base64: bytes.toString('base64') };
  }
  if (Array.isArray(value)) return value.map((v, i) => encodeValue(v, `${where}[${i}]`));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = encodeValue(v, `${where}.${key}`);
    }
    return out;
  }
  const kind = typeof value === 'object' ? value.constructor?.name : typeof value;
  throw new ParryError('BAD_INPUT', `queue: ${where} is a ${kind}, which jobs cannot carry`);
}

/** The inverse of `encodeValue`. */
export function decodeValue(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(decodeValue);
  const o = value as Record<string, unknown>;
  if (typeof o.$typed === 'string' && typeof o.base64 === 'string') {
    const ctor = TYPED[o.$typed as TypedName];
    if (ctor === undefined) throw new ParryError('BAD_INPUT', `queue: unknown array ${o.$typed}`);
    const bytes = Buffer.from(o.base64, 'base64');
    // A copy aligned for the element size (a Buffer may start at any byte of its pool).
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    return new ctor(copy.buffer, 0, bytes.length / ctor.BYTES_PER_ELEMENT);
  }
  if (typeof o.$number === 'string' && Object.keys(o).length === 1) {
    return o.$number === '-0' ? -0 : Number(o.$number);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = decodeValue(v);
  return out;
}

/** The JSON text of an encoded value, keys sorted (`encodeValue` already sorts them). */
export const canonicalJson = (encoded: unknown): string => JSON.stringify(encoded);

/** sha256 (hex) of a text. */
export const sha256 = (text: string | Uint8Array): string =>
  createHash('sha256').update(text).digest('hex');
