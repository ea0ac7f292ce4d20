import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/rng.js';
import {
  decodeFloat16,
  encodeFloat16,
  float16BitsToFloat32,
  float32ToFloat16Bits,
} from '../../src/models/index.js';

describe('float16', () => {
  // Bit patterns from the IEEE 754 binary16 tables (e.g. Wikipedia, "Half-precision
  // floating-point format", exponent/significand examples).
  it.each([
    [1.0, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [0.1, 0x2e66],
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [65520, 0x7c00], // halfway between 65504 and 2^16: ties to even = Inf
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1e-7, 0x0002], // subnormal: 1e-7 / 2^-24 = 1.68 -> 2
    [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even = 0
    [3 * 2 ** -25, 0x0002], // 1.5 subnormal steps: ties to even = 2
    [2 ** -14 - 2 ** -25, 0x0400], // largest subnormal + half a step rounds up into the normals
    [1 + 2 ** -11, 0x3c00], // tie, even mantissa stays
    [1 + 3 * 2 ** -11, 0x3c02], // tie, odd mantissa rounds up
    [0, 0x0000],
    [-0, 0x8000],
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
    [1e-9, 0x0000],
  ])('encodes %d as %i', (value, bits) => {
    expect(float32ToFloat16Bits(value).toString(16)).toBe(bits.toString(16));
  });

  it('keeps NaN a NaN', () => {
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(Number.NaN)))).toBe(true);
  });

  it('round-trips normal values within 2^-11 relative error', () => {
    const rng = new Rng(3);
    const values = new Float32Array(20000);
    for (let i = 0; i < values.length; i++) {
      // log-uniform magnitudes over the whole normal range, both signs
      const magnitude = 2 ** (-14 + rng.next() * 29.99);
      values[i] = rng.next() < 0.5 ? -magnitude : magnitude;
    }
    const back = decodeFloat16(encodeFloat16(values));
    let worst = 0;
    for (let i = 0; i < values.length; i++) {
      worst = Math.max(worst, Math.abs(back[i] - values[i]) / Math.abs(values[i]));
    }
    expect(worst).toBeLessThanOrEqual(2 ** -11);
    expect(worst).toBeGreaterThan(2 ** -12); // the bound is tight, not vacuous
  });

  it('decodes every finite half exactly as tfjs-core io.decodeWeights does', () => {
    const bits = new Uint16Array(0x10000);
    for (let i = 0; i < bits.length; i++) bits[i] = i;
    const finite = bits.filter((b) => (b & 0x7c00) !== 0x7c00);
    const spec: tf.io.WeightsManifestEntry = {
      name: 'w',
      shape: [finite.length],
      dtype: 'float32',
      quantization: { dtype: 'float16' },
    };
    const decoded = tf.io.decodeWeights(finite.buffer, [spec]).w;
    const ours = decodeFloat16(finite);
    expect(Array.from(decoded.dataSync())).toEqual(Array.from(ours));
    decoded.dispose();
    // and the encoder inverts the decoder on every finite half
    const again = encodeFloat16(ours);
    expect(finite.filter((b, i) => again[i] !== b)).toEqual(new Uint16Array(0));
  });
});
