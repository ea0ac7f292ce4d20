/**
 * IEEE 754 binary16 ("half") encoding for weight storage. tfjs-core's `io.decodeWeights`
 * dequantizes specs marked `quantization: {dtype: 'float16'}` back to float32 on load
 * (tfjs-core 4.22 `io_utils.js`, `decodeWeight`), so only the encoder lives here; the decoder
 * is kept for tests and for reading shards outside tfjs.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * Bits of the half nearest to `value` (after rounding `value` to float32), ties to even.
 * Overflow gives ±Inf, values below half the smallest subnormal give ±0, NaN stays NaN.
 */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value = m * 2^-24 with m = (1.mant * 2^23) >> (14 - e).
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    let half = m >>> shift;
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half; // a carry into bit 10 yields the smallest normal, as it should
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // carry may reach Inf: correct
  return sign | half;
}

/** The value of a half given by its bits. */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >>> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m !== 0 ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Encodes float32 values as halves (a new array; the input is not modified). */
export function encodeFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return out;
}

/** Decodes halves to float32 values. */
export function decodeFloat16(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToFloat32(bits[i]);
  return out;
}
