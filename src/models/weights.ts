/**
 * Weight specs of the tfjs weights manifest: validation, byte sizes, float16 storage.
 * Layout (tfjs-core `io.decodeWeights`): the specs of all groups in order, each weight's values
 * back to back; a quantized weight stores `quantization.dtype` values; a string weight stores,
 * per element, a uint32 little-endian byte length and the bytes.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { encodeFloat16 } from './float16.js';

type WeightSpec = tf.io.WeightsManifestEntry;

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const QUANTIZED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

/** What is wrong with one parsed weight spec, or null when it is well formed. */
export function weightSpecProblem(spec: unknown): string | null {
  if (spec === null || typeof spec !== 'object') return `a weight spec is ${JSON.stringify(spec)}`;
  const s = spec as Record<string, unknown>;
  const name = typeof s.name === 'string' ? s.name : null;
  if (name === null) return `a weight spec has no name`;
  const shape = s.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    return `weight '${name}' has shape ${JSON.stringify(shape)}`;
  }
  if (typeof s.dtype !== 'string' || !(s.dtype in DTYPE_BYTES || s.dtype === 'string')) {
    return `weight '${name}' has unknown dtype ${JSON.stringify(s.dtype)}`;
  }
  if (s.quantization == null) return null;
  const q = s.quantization as Record<string, unknown>;
  if (typeof q.dtype !== 'string' || !(q.dtype in QUANTIZED_BYTES)) {
    return `weight '${name}' has unknown quantization dtype ${JSON.stringify(q.dtype)}`;
  }
  if (q.dtype === 'float16' && s.dtype !== 'float32') {
    return `weight '${name}' is float16-quantized but has dtype ${s.dtype}`;
  }
  if (q.dtype !== 'float16' && (typeof q.scale !== 'number' || typeof q.min !== 'number')) {
    return `weight '${name}' is ${q.dtype}-quantized without numeric scale and min`;
  }
  if (q.dtype !== 'float16' && s.dtype !== 'float32' && s.dtype !== 'int32') {
    return `weight '${name}' is ${q.dtype}-quantized but has dtype ${s.dtype}`;
  }
  return null;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Bytes the weight at `offset` of `data` occupies. Only string weights need `data` (their
 * length prefixes); when `data` ends early the result runs past its end.
 */
export function weightByteLength(spec: WeightSpec, data: Uint8Array, offset: number): number {
  const n = size(spec.shape);
  if (spec.quantization != null) return n * QUANTIZED_BYTES[spec.quantization.dtype];
  if (spec.dtype !== 'string') return n * DTYPE_BYTES[spec.dtype];
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = offset;
  for (let i = 0; i < n; i++) {
    if (at + 4 > data.byteLength) return at + 4 - offset;
    at += 4 + view.getUint32(at, true);
  }
  return at - offset;
}

/** Bytes all `specs` occupy, read back to back from `data`. */
export function weightsByteLength(specs: WeightSpec[], data: Uint8Array): number {
  let offset = 0;
  for (const spec of specs) offset += weightByteLength(spec, data, offset);
  return offset;
}

/**
 * Re-encodes every unquantized float32 weight as IEEE half and marks its spec
 * `quantization: {dtype: 'float16', original_dtype: 'float32'}`; other weights are copied.
 * Returns new specs and a new buffer; the inputs are not modified.
 */
export function quantizeFloat16(
  specs: WeightSpec[],
  data: ArrayBuffer,
): { specs: WeightSpec[]; data: ArrayBuffer } {
  const bytes = new Uint8Array(data);
  const parts: Uint8Array[] = [];
  const outSpecs: WeightSpec[] = [];
  let offset = 0;
  for (const spec of specs) {
    const length = weightByteLength(spec, bytes, offset);
    if (spec.dtype === 'float32' && spec.quantization == null) {
      const values = new Float32Array(data.slice(offset, offset + length));
      parts.push(new Uint8Array(encodeFloat16(values).buffer));
      const quantization = { dtype: 'float16', original_dtype: 'float32' } as const;
      outSpecs.push({ ...spec, quantization });
    } else {
      parts.push(bytes.slice(offset, offset + length));
      outSpecs.push(spec);
    }
    offset += length;
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return { specs: outSpecs, data: out.buffer };
}
