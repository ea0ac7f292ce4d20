/**
 * The stealing registry end to end on a victim that is itself a linear softmax model: stealing
 * into a linear thief with unlimited-precision answers recovers it (agreement on held-out points,
 * and its weights up to the softmax's invariance), every method keeps to its budget (counted on
 * the victim's side), results are reproducible from the seed and leak no tensors, the scores
 * agree with an independent count, and bad options are refused by name.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  parseStealingOptions,
  runStealing,
  STEALING_ATTACKS,
  scoreThief,
  stealingAttackNames,
  stealingCurve,
} from '../../../../src/attacks/privacy/stealing/index.js';
import type { Dataset } from '../../../../src/data/dataset.js';
import { ParryError } from '../../../../src/errors.js';
import { LinearClassifier, linearBlackBox, values } from '../../helpers.js';

const SHAPE = [4, 4, 1];
const D = 16;
const K = 3;

/**
 * A victim W `[D][K]` with entries in [-1.5, 1.5), its bias centring every logit at the cube's
 * middle (x = 0.5), so each class wins a fair share of [0, 1]^16.
 */
const victimWeights = Array.from({ length: D }, (_, i) => values(K, 100 + i, -1.5, 1.5));
const victimModel = new LinearClassifier(
  SHAPE,
  victimWeights,
  [0, 1, 2].map((k) => -0.5 * victimWeights.reduce((a, row) => a + row[k], 0)),
);

/** Float64 logits of one flat example. */
function logitsOf(x: ArrayLike<number>): number[] {
  return victimModel.bias.map((b, k) => {
    let s = b;
    for (let j = 0; j < D; j++) s += x[j] * victimModel.weights[j][k];
    return s;
  });
}

/** n points uniform in [0, 1)^16, labelled by the victim's top-1 (float64). */
function uniformSet(n: number, seed: number, name: string): Dataset {
  const x = Float32Array.from(values(n * D, seed));
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const z = logitsOf(x.subarray(i * D, (i + 1) * D));
    labels[i] = z.indexOf(Math.max(...z));
  }
  return { name, x, shape: [n, ...SHAPE], labels, numClasses: K };
}

const pool = uniformSet(600, 7, 'pool');
const test = uniformSet(300, 8, 'held-out');

/** A one-Dense-layer thief (flatten → dense K), Glorot weights from `seed`. */
function linearThief(seed: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: SHAPE }),
      tfl.layers.dense({
        units: K,
        kernelInitializer: tfl.initializers.glorotUniform({ seed }),
        name: 'logits',
      }),
    ],
  });
}

function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const t = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / t);
}

/** Rows minus their mean over classes: what softmax cross-entropy can identify of W and b. */
function centred(rows: number[][]): number[][] {
  return rows.map((r) => {
    const m = r.reduce((a, b) => a + b, 0) / r.length;
    return r.map((v) => v - m);
  });
}

const small = { epochs: 2, batchSize: 32, lr: 0.05, queryBatch: 64 };
const options: Record<string, Record<string, unknown>> = {
  knockoff: { ...small, policy: 'adaptive', roundSize: 16 },
  copycat: small,
  jacobian: { ...small, seedSize: 20, lambda: 0.1 },
};

describe('stealing registry', () => {
  it('lists the three methods, each needing labels only', () => {
    expect(stealingAttackNames()).toEqual(['knockoff', 'copycat', 'jacobian']);
    for (const e of STEALING_ATTACKS) {
      expect(e.requires).toEqual(['labels']);
      expect(Object.keys(e.schema.shape)).toEqual(expect.arrayContaining(['budget', 'seed']));
    }
  });

  it('a linear victim with scores is recovered by a linear thief (Knockoff, random policy)', async () => {
    const victim = linearBlackBox(victimModel);
    const { result, model } = await runStealing(
      'knockoff',
      victim,
      { pool, test },
      { budget: 600, epochs: 300, batchSize: 100, lr: 0.1, seed: 3 },
      { buildThief: linearThief, transfer: { eps: 0, steps: 0 } },
    );
    try {
      expect(result.targets).toBe('soft');
      expect(result.queriesUsed).toBe(600);
      expect(result.agreement).toBeGreaterThanOrEqual(0.95);
      // Victim labels are the truth here, so accuracy is agreement with the victim too.
      expect(result.accuracy).toBe(result.agreement);
      const [kernel, bias] = model.getWeights().map((w) => w.arraySync()) as [number[][], number[]];
      const got = centred([...kernel, bias]);
      const want = centred([...victimModel.weights, victimModel.bias]);
      let diff = 0;
      let norm = 0;
      for (let i = 0; i < got.length; i++) {
        for (let k = 0; k < K; k++) {
          diff += (got[i][k] - want[i][k]) ** 2;
          norm += want[i][k] ** 2;
        }
      }
      // The probabilities themselves, on held-out points, in float64.
      let worstProb = 0;
      for (let i = 0; i < 300; i++) {
        const x = test.x.subarray(i * D, (i + 1) * D);
        const p = softmax(logitsOf(x));
        const q = softmax(
          bias.map((b, k) => b + kernel.reduce((a, row, j) => a + row[k] * x[j], 0)),
        );
        for (let k = 0; k < K; k++) worstProb = Math.max(worstProb, Math.abs(p[k] - q[k]));
      }
      expect(Math.sqrt(diff / norm)).toBeLessThan(0.1);
      expect(worstProb).toBeLessThan(0.01);
    } finally {
      model.dispose();
    }
  });

  it('a label-only linear victim is still copied (Copycat): agreement ≥ 0.95', async () => {
    const victim = linearBlackBox(victimModel, { labelsOnly: true });
    const { result, model } = await runStealing(
      'copycat',
      victim,
      { pool, test },
      { budget: 600, epochs: 150, batchSize: 50, lr: 0.05, seed: 3 },
      { buildThief: linearThief, transfer: { eps: 0, steps: 0 } },
    );
    model.dispose();
    expect(result.targets).toBe('hard');
    expect(result.agreement).toBeGreaterThanOrEqual(0.95);
  });

  for (const e of STEALING_ATTACKS) {
    it(`${e.name}: never asks the victim for more than the budget`, async () => {
      for (const budget of [1, 37, 100]) {
        const victim = linearBlackBox(victimModel);
        const { result, model } = await runStealing(
          e.name,
          victim,
          { pool, test: uniformSet(10, 9, 't') },
          { ...options[e.name], budget },
          { buildThief: linearThief, transfer: { steps: 1 } },
        );
        model.dispose();
        // The victim's own tally, scoring's queries (the test set clean and attacked) aside.
        const asked = victim.calls.reduce((a, b) => a + b, 0) - 2 * 10;
        expect(asked).toBeLessThanOrEqual(budget);
        expect(result.queriesUsed).toBe(asked);
        // The pool holds 600 images, more than any budget here: all of it is spent.
        expect(asked).toBe(budget);
      }
    });

    it(`${e.name}: reproducible from the seed, and leaks no tensors`, async () => {
      const run = async (seed: number) => {
        const { result, model } = await runStealing(
          e.name,
          linearBlackBox(victimModel),
          { pool, test: uniformSet(20, 9, 't') },
          { ...options[e.name], budget: 80, seed },
          { buildThief: linearThief, transfer: { steps: 2 } },
        );
        const w = model.getWeights().map((t) => Array.from(t.dataSync()));
        model.dispose();
        return { result, w };
      };
      await run(1);
      const before = tf.memory().numTensors;
      const a = await run(1);
      expect(tf.memory().numTensors).toBe(before);
      const b = await run(1);
      const c = await run(2);
      expect(b.w).toEqual(a.w);
      expect(b.result.agreement).toBe(a.result.agreement);
      expect(b.result.transferRate).toBe(a.result.transferRate);
      expect(b.result.details).toEqual(a.result.details);
      expect(c.w).not.toEqual(a.w);
    });
  }

  it('scores a thief against an independent count: accuracy, agreement, transfer rate', async () => {
    // The thief is the victim's own weights plus a shift of class 0: some held-out points differ.
    const thief = linearThief(1);
    const shifted = [victimModel.bias[0] - 3, victimModel.bias[1], victimModel.bias[2]];
    thief.setWeights([tf.tensor2d(victimModel.weights), tf.tensor1d(shifted)]);
    const victim = linearBlackBox(victimModel);
    const eps = 0.05;
    const s = await scoreThief(thief, victim, test, { eps, steps: 10, batchSize: 64 });
    const w = thief.getWeights().map((t) => t.arraySync()) as [number[][], number[]];
    thief.dispose();
    let correct = 0;
    let agree = 0;
    for (let i = 0; i < 300; i++) {
      const x = test.x.subarray(i * D, (i + 1) * D);
      const zv = logitsOf(x);
      const zt = w[1].map((b, k) => b + w[0].reduce((a, row, j) => a + row[k] * x[j], 0));
      const v = zv.indexOf(Math.max(...zv));
      const t = zt.indexOf(Math.max(...zt));
      if (t === test.labels[i]) correct++;
      if (t === v) agree++;
    }
    expect(s.n).toBe(300);
    expect(s.victimAccuracy).toBe(1);
    expect(s.accuracy).toBeCloseTo(correct / 300, 10);
    expect(s.agreement).toBeCloseTo(agree / 300, 10);
    expect(s.accuracy).toBeLessThan(1);
    // No L∞ step of 0.05 can cross the boundary of a point farther than 0.05 (in the dual norm:
    // margin / ‖w_y − w_k‖₁) from every boundary of the victim: those never transfer.
    let safe = 0;
    for (let i = 0; i < 300; i++) {
      const x = test.x.subarray(i * D, (i + 1) * D);
      const z = logitsOf(x);
      const y = test.labels[i];
      const far = z.every((zk, k) => {
        if (k === y) return true;
        const l1 = victimModel.weights.reduce((a, row) => a + Math.abs(row[y] - row[k]), 0);
        return (z[y] - zk) / l1 > eps;
      });
      if (far) safe++;
    }
    expect(s.transferRate).not.toBeNull();
    expect(s.transferRate!).toBeLessThanOrEqual((300 - safe) / 300 + 1e-12);
    expect(s.transferRate!).toBeGreaterThan(0);
    const zero = await scoreThief(linearThief(2), victim, test, { eps: 0, steps: 3 });
    expect(zero.transferRate).toBe(0);
  });

  it('a curve: one scored thief per budget, in order', async () => {
    const seen: number[] = [];
    const curve = await stealingCurve(
      'copycat',
      linearBlackBox(victimModel),
      { pool, test: uniformSet(20, 9, 't') },
      [10, 40, 90],
      small,
      { buildThief: linearThief, transfer: { steps: 1 }, onPoint: (r) => seen.push(r.budget) },
    );
    expect(curve.map((r) => [r.method, r.budget, r.queriesUsed])).toEqual([
      ['copycat', 10, 10],
      ['copycat', 40, 40],
      ['copycat', 90, 90],
    ]);
    expect(seen).toEqual([10, 40, 90]);
    for (const r of curve) {
      expect(r.seconds).toBeGreaterThan(0);
      expect(r.agreement).toBeGreaterThanOrEqual(0);
      expect(r.agreement).toBeLessThanOrEqual(1);
    }
  });

  it('refuses a budget of 0 or below, an unknown method and an option a method does not read', async () => {
    for (const budget of [0, -5, 2.5]) {
      const err = await caught(() => parseStealingOptions('knockoff', { budget }));
      expect(err.code).toBe('BAD_OPTION');
      expect(err.message).toMatch(/^knockoff: budget: /);
      expect(err.message).not.toContain('\n');
    }
    expect((await caught(() => parseStealingOptions('knockoff', {}))).message).toBe(
      'knockoff: budget is required',
    );
    expect((await caught(() => parseStealingOptions('jacobian', { budget: 0 }))).message).toBe(
      'jacobian: budget: must be a positive integer, got 0',
    );
    expect((await caught(() => parseStealingOptions('steal', { budget: 5 }))).message).toContain(
      "unknown stealing attack 'steal'",
    );
    const err = await caught(() =>
      parseStealingOptions('copycat', { budget: 5, policy: 'random' }),
    );
    expect(err.message).toContain("copycat does not read 'policy'");
    await expect(
      stealingCurve('copycat', linearBlackBox(victimModel), { pool, test }, [10, 0], small),
    ).rejects.toThrow(/budget: must be a positive integer, got 0/);
  });
});

async function caught(f: () => unknown): Promise<ParryError> {
  try {
    await f();
  } catch (e) {
    expect(e).toBeInstanceOf(ParryError);
    return e as ParryError;
  }
  throw new Error('expected an error');
}
