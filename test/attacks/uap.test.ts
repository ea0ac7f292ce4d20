import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { foolingRate, universalPerturbation } from '../../src/attacks/evasion/uap.js';
import { findAttack } from '../../src/attacks/registry.js';
import { twoClassModel, values } from './helpers.js';

const model = twoClassModel();
const d = 6;
/** a = w1 − w0: the direction that raises class 1's score over class 0's. */
const a = model.weights.map((row) => row[1] - row[0]);
const b = model.bias[1] - model.bias[0];
const score = (x: number[]) => x.reduce((s, v, i) => s + v * a[i], b);

/** Inputs inside [0.3, 0.7]^6 (so small perturbations never clip) that the model puts in class 0. */
function class0Inputs(n: number): number[][] {
  const rows: number[][] = [];
  for (let seed = 1; rows.length < n; seed++) {
    const x = values(d, seed, 0.3, 0.7);
    if (score(x) < 0) rows.push(x);
  }
  return rows;
}

describe('universal adversarial perturbation', () => {
  const rows = class0Inputs(40);
  const x = tf.tensor(rows.flat(), [rows.length, 2, 3, 1]);
  const norm2 = Math.hypot(...a);

  it('L2: finds the one direction that fools a linear model, with its exact fooling rate', async () => {
    const eps = 0.15;
    const before = tf.memory().numTensors;
    const r = await universalPerturbation(model, x, {
      eps,
      norm: 'l2',
      targetFoolingRate: 1,
      batchSize: 4,
      seed: 3,
    });
    expect(tf.memory().numTensors).toBe(before);
    const v = Array.from(r.perturbation);
    const vNorm = Math.hypot(...v);
    expect(vNorm).toBeLessThanOrEqual(eps + 1e-6);
    // DeepFool steps along a on a linear model, so v is a positive multiple of a.
    const cos = v.reduce((s, vi, i) => s + vi * a[i], 0) / (vNorm * norm2);
    expect(cos).toBeGreaterThan(0.999);
    // Closed form: the optimal L2 UAP ξ·a/‖a‖ fools exactly the inputs within ξ of the boundary.
    const optimal = rows.filter((row) => score(row) + eps * norm2 > 0).length / rows.length;
    expect(optimal).toBeGreaterThan(0.1);
    expect(optimal).toBeLessThan(1);
    expect(vNorm).toBeCloseTo(eps, 5);
    expect(r.foolingRates[r.foolingRates.length - 1]).toBeCloseTo(optimal, 6);
    const vt = tf.tensor(r.perturbation, [2, 3, 1]);
    expect(await foolingRate(model, x, vt)).toBeCloseTo(optimal, 6);
    vt.dispose();
    expect(r.gradientEvaluations).toBeGreaterThan(0);
  });

  it('Linf: converges to eps·sign(a) and stops at the target rate', async () => {
    const eps = 0.05;
    const r = await universalPerturbation(model, x, { eps, norm: 'linf', targetFoolingRate: 1 });
    const v = Array.from(r.perturbation);
    expect(v.map((vi) => Math.round(vi * 1e6) / 1e6)).toEqual(a.map((ai) => eps * Math.sign(ai)));
    const optimal =
      rows.filter((row) => score(row) + eps * a.reduce((s, ai) => s + Math.abs(ai), 0) > 0).length /
      rows.length;
    expect(r.foolingRates[r.foolingRates.length - 1]).toBeCloseTo(optimal, 6);
    // A reachable target stops the fit early.
    const early = await universalPerturbation(model, x, {
      eps,
      norm: 'linf',
      targetFoolingRate: optimal / 2,
    });
    expect(early.foolingRates[early.foolingRates.length - 1]).toBeGreaterThanOrEqual(optimal / 2);
    expect(early.epochs).toBe(1);
  });

  it('is seeded, returns zero at eps 0, and applies a given perturbation through the registry', async () => {
    const cfg = { eps: 0.1, norm: 'l2' as const, batchSize: 3, seed: 9, targetFoolingRate: 1 };
    const [r1, r2] = [
      await universalPerturbation(model, x, cfg),
      await universalPerturbation(model, x, cfg),
    ];
    expect(Array.from(r1.perturbation)).toEqual(Array.from(r2.perturbation));
    const zero = await universalPerturbation(model, x, { ...cfg, eps: 0 });
    expect(Array.from(zero.perturbation)).toEqual(new Array(d).fill(0));
    const labels = tf.zeros([rows.length], 'int32') as tf.Tensor1D;
    const out = await findAttack('uap')!.run(
      model,
      x,
      labels,
      { norm: 'l2', eps: 0.1, targeted: false, seed: 0, universalPerturbation: r1.perturbation },
      {},
    );
    const delta = tf.sub(out.xAdv, x);
    const got = Array.from(delta.dataSync());
    for (let i = 0; i < got.length; i++) {
      expect(got[i]).toBeCloseTo(r1.perturbation[i % d], 5);
    }
    expect(out.gradientEvaluations).toBe(0);
    tf.dispose([delta, out.xAdv, labels]);
  });
});
