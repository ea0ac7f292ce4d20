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
