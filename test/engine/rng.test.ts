import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/rng.js';

describe('Rng', () => {
  it('is reproducible from its seed and differs across seeds', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const sa = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c.nextUint32())).not.toEqual(sa);
  });

  it('draws uniform and normal values with the right moments', () => {
    const r = new Rng(7);
    const n = 20000;
    let su = 0;
    let sn = 0;
    let sn2 = 0;
    for (let i = 0; i < n; i++) {
      su += r.next();
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    // Standard errors: uniform mean 0.002, normal mean 0.007, normal variance 0.01.
    expect(Math.abs(su / n - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(sn / n)).toBeLessThan(0.03);
    expect(Math.abs(sn2 / n - 1)).toBeLessThan(0.05);
  });

  it('fills arrays with the normal() stream, scaled, across odd lengths and a pending spare', () => {
    for (const [skip, length] of [
      [0, 7],
      [1, 6],
      [1, 1],
      [0, 0],
    ]) {
      const a = new Rng(11);
      const b = new Rng(11);
      for (let i = 0; i < skip; i++) expect(a.normal()).toBe(b.normal());
      const filled = a.fillNormal(new Float32Array(length), 0.25);
      const one = Float32Array.from({ length }, () => b.normal() * 0.25);
      expect(Array.from(filled)).toEqual(Array.from(one));
      expect(a.normal()).toBe(b.normal());
    }
    const big = new Rng(3).fillNormal(new Float32Array(40_000), 2);
    const mean = big.reduce((s, v) => s + v, 0) / big.length;
    const variance = big.reduce((s, v) => s + (v - mean) ** 2, 0) / big.length;
    // Standard errors: mean 0.01, variance 0.03.
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 4)).toBeLessThan(0.15);
  });

  it('never hands tfjs a zero seed and forks independent streams', () => {
    const r = new Rng(0);
    for (let i = 0; i < 1000; i++) expect(r.nextSeed()).toBeGreaterThan(0);
    const f1 = r.fork();
    const f2 = r.fork();
    expect(f1.nextUint32()).not.toBe(f2.nextUint32());
  });

  it('makes permutations', () => {
    const p = Array.from(new Rng(1).permutation(100));
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('rejects bad seeds', () => {
    expect(() => new Rng(-1)).toThrow(/seed/);
    expect(() => new Rng(1.5)).toThrow(/seed/);
  });
});
