/**
 * Shapiro–Wilk W and p against two independent implementations of AS R94:
 * - R's `shapiro.test` on Shapiro & Wilk's (1965) weights of 11 men: W = 0.78881, p = 0.006704
 *   (the value R and the textbooks print for this sample);
 * - SciPy 1.17.1 `scipy.stats.shapiro` (its own swilk routine) on the samples below, printed with
 *   `repr(float(...))`; the samples are formulas both sides compute alike.
 */
import { describe, expect, it } from 'vitest';
import { shapiroWilk, shapiroWilkCoefficients } from '../../src/serve/shapiro-wilk.js';

const sinus = (n: number) =>
  Array.from({ length: n }, (_, k) => Math.sin((k + 1) * 1.7) + 0.1 * (k + 1));
const expo = (n: number) => Array.from({ length: n }, (_, k) => -Math.log((k + 0.5) / n));
const grid = (n: number) => Array.from({ length: n }, (_, k) => (((k + 1) * 37) % 101) / 101);

/** [name, sample, W, p] from scipy.stats.shapiro. */
const SCIPY: [string, number[], number, number][] = [
  ['n = 3', [1, 2, 4], 0.9642857142857142, 0.6368868450289689],
  ['n = 4', [2.1, 3.3, 3.4, 7.9], 0.8196515993999044, 0.14238821845931127],
  ['n = 5', [1, 2, 3, 4, 10], 0.8357883166461942, 0.1536125843490888],
  ['n = 7', [0.3, -1.2, 0.8, 2.5, -0.4, 0.1, 1.7], 0.9817638318493023, 0.967657133280437],
  ['sinus 12', sinus(12), 0.9513393067695872, 0.6566412486794025],
  ['expo 12', expo(12), 0.8725624881663823, 0.07043483021876741],
  ['grid 12', grid(12), 0.9732718584585386, 0.941877673970677],
  ['sinus 50', sinus(50), 0.9776255818038099, 0.45674930218528975],
  ['expo 50', expo(50), 0.837586521564872, 7.255412098708681e-6],
  ['grid 50', grid(50), 0.9548588965304468, 0.0541955336296695],
  ['sinus 200', sinus(200), 0.9597891545505062, 1.8768066882642027e-5],
  ['expo 200', expo(200), 0.823752560558538, 2.6924168019465772e-14],
  ['grid 1000', grid(1000), 0.9545718491147536, 4.8315003888220394e-17],
  ['expo 1000', expo(1000), 0.8180303936713368, 3.7284600482550275e-32],
  ['sinus 5000', sinus(5000), 0.9549237914408029, 9.537005309308476e-37],
  ['expo 5000', expo(5000), 0.8163606777377921, 5.48403830112451e-60],
];

describe('shapiroWilk', () => {
  it("Shapiro & Wilk's weights of 11 men, as R's shapiro.test prints them", () => {
    const r = shapiroWilk([148, 154, 158, 160, 161, 162, 166, 170, 182, 195, 236]);
    expect(r.w).toBeCloseTo(0.78881, 5);
    expect(r.p).toBeCloseTo(0.006704, 6);
  });

  it.each(SCIPY)('%s: W and p as scipy.stats.shapiro', (_name, sample, w, p) => {
    const r = shapiroWilk(sample);
    // SciPy's routine runs partly in single precision: W agrees to ~1e-9, p to ~1e-6 relative.
    expect(Math.abs(r.w - w)).toBeLessThan(2e-9);
    expect(Math.abs(r.p - p) / p).toBeLessThan(5e-6);
  });

  it('does not depend on order, location or scale', () => {
    const x = sinus(40);
    const base = shapiroWilk(x);
    const moved = shapiroWilk(x.map((v) => 1e6 + 3 * v).reverse());
    expect(moved.w).toBeCloseTo(base.w, 9);
    expect(moved.p).toBeCloseTo(base.p, 8);
  });

  it('W is the squared correlation of the sorted sample with the coefficients', () => {
    // Written out as in Shapiro & Wilk (1965): W = (Σ aᵢ x₍ᵢ₎)² / Σ (xᵢ − x̄)², with the full
    // antisymmetric coefficient vector built from the half the function returns.
    for (const n of [3, 4, 5, 6, 11, 12, 57]) {
      const x = expo(n);
      const half = shapiroWilkCoefficients(n);
      const a = Array.from({ length: n }, (_, i) =>
        i < n - 1 - i ? -half[i] : i > n - 1 - i ? half[n - 1 - i] : 0,
      );
      expect(a.reduce((s, v) => s + v * v, 0)).toBeCloseTo(1, 12);
      const sorted = [...x].sort((p, q) => p - q);
      const mean = x.reduce((s, v) => s + v, 0) / n;
      const num = a.reduce((s, ai, i) => s + ai * sorted[i], 0) ** 2;
      const den = x.reduce((s, v) => s + (v - mean) ** 2, 0);
      expect(shapiroWilk(x).w).toBeCloseTo(num / den, 12);
    }
  });

  it('n = 3: the exact distribution, W = 3/4 (the least) has p = 0, W = 1 has p = 1', () => {
    expect(shapiroWilk([0, 0, 1]).w).toBeCloseTo(0.75, 12);
    expect(shapiroWilk([0, 0, 1]).p).toBeCloseTo(0, 9);
    expect(shapiroWilk([0, 1, 2]).w).toBeCloseTo(1, 12);
    expect(shapiroWilk([0, 1, 2]).p).toBeCloseTo(1, 9);
  });

  it('refuses samples it cannot test, naming the problem', () => {
    expect(() => shapiroWilk([1, 2])).toThrow(
      /sample size must be an integer in \[3, 5000\], got 2/,
    );
    expect(() => shapiroWilk(new Float64Array(5001))).toThrow(/got 5001/);
    expect(() => shapiroWilk([2, 2, 2, 2])).toThrow(/all 4 values are equal \(2\)/);
    expect(() => shapiroWilk([1, Number.NaN, 3])).toThrow(/not finite/);
  });
});
