/** Job values through JSON: exact typed arrays and special numbers, sorted keys, clear refusals. */
import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  decodeValue,
  encodeValue,
  sha256,
} from '../../../src/engine/queue/codec.js';

describe('encodeValue / decodeValue', () => {
  it('round-trips typed arrays (views included), NaN, -0 and infinities exactly', () => {
    const bytes = Uint8Array.from([9, 1, 2, 3, 4, 5, 6, 7, 8]);
    const value = {
      z: [1, Number.NaN, -0, Number.POSITIVE_INFINITY, null, 'text', true],
      f: new Float64Array([0.1, -1e300, Number.NaN]),
      view: new Float32Array(bytes.buffer.slice(0, 8)).subarray(1), // one float, offset 4
      odd: bytes.subarray(1, 4),
      nested: { i: new Int32Array([-2147483648, 7]), s: new Uint16Array([65535]) },
    };
    const text = canonicalJson(encodeValue(value));
    const back = decodeValue(JSON.parse(text)) as typeof value;
    expect(back.z).toEqual(value.z);
    expect(Object.is(back.z[2], -0)).toBe(true);
    expect(back.f).toEqual(value.f);
    expect(back.view).toBeInstanceOf(Float32Array);
    expect(Array.from(back.view)).toEqual(Array.from(value.view));
    expect(Array.from(back.odd)).toEqual([1, 2, 3]);
    expect(back.nested.i).toEqual(value.nested.i);
    expect(back.nested.s).toEqual(value.nested.s);
  });

  it('writes keys sorted, so equal values hash alike', () => {
    expect(canonicalJson(encodeValue({ b: 1, a: { d: 2, c: 3 } }))).toBe(
      '{"a":{"c":3,"d":2},"b":1}',
    );
    expect(sha256(canonicalJson(encodeValue({ x: 1, y: 2 })))).toBe(
      sha256(canonicalJson(encodeValue({ y: 2, x: 1 }))),
    );
    // Node's own sha256 of the text, for reference.
    expect(sha256('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    // Base64 of the little-endian bytes: 1.0f is 00 00 80 3f.
    expect(encodeValue(new Float32Array([1]))).toEqual({
      $typed: 'Float32Array',
      base64: 'AACAPw==',
    });
  });

  it('refuses what JSON cannot carry, naming where', () => {
    expect(() => encodeValue({ m: new Map() }, 'input')).toThrow(
      'queue: input.m is a Map, which jobs cannot carry',
    );
    expect(() => encodeValue({ a: [() => 1] }, 'input')).toThrow('queue: input.a[0] is a function');
    expect(() => encodeValue(new BigInt64Array(1), 'input')).toThrow(
      'queue: input is a BigInt64Array, which jobs cannot carry',
    );
  });
});
