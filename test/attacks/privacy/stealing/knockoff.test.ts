/**
 * Knockoff Nets' pieces against hand-computed values and an independent float64 recomputation:
 * the three rewards, their standardised mean, the gradient bandit's update; finite rewards from a
 * victim that answers one-hot labels (where ART's rewards diverge); an adaptive policy that
 * prefers the classes its reward favours; pools smaller than the budget.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  certaintyReward,
  copycat,
  copycatSchema,
  diversityReward,
  GradientBandit,
  KnockoffRewards,
  knockoff,
  knockoffSchema,
  lossReward,
  PROB_FLOOR,
} from '../../../../src/attacks/privacy/stealing/index.js';
import type { Dataset } from '../../../../src/data/dataset.js';
import { LinearClassifier, linearBlackBox, values } from '../../helpers.js';

const SHAPE = [4, 4, 1];
const D = 16;
const K = 3;
const weights = Array.from({ length: D }, (_, i) => values(K, 200 + i, -1.5, 1.5));
const victimModel = new LinearClassifier(
  SHAPE,
  weights,
  [0, 1, 2].map((k) => -0.5 * weights.reduce((a, row) => a + row[k], 0)),
);

/** The victim's probabilities for one flat example, in float64. */
function victimProbs(x: ArrayLike<number>): number[] {
  const z = victimModel.bias.map((b, k) => {
    let s = b;
    for (let j = 0; j < D; j++) s += x[j] * victimModel.weights[j][k];
    return s;
  });
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const t = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / t);
}

/** n uniform points; `label(x)` gives the pool's own classes (the bandit's arms). */
function pool(n: number, seed: number, label: (x: Float32Array) => number, classes = 3): Dataset {
  const x = Float32Array.from(values(n * D, seed));
  const labels = Int32Array.from({ length: n }, (_, i) => label(x.subarray(i * D, (i + 1) * D)));
  return { name: 'pool', x, shape: [n, ...SHAPE], labels, numClasses: classes };
}

function linearThief(seed: number): tfl.LayersModel {
  return tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: SHAPE }),
      tfl.layers.dense({ units: K, kernelInitializer: tfl.initializers.glorotUniform({ seed }) }),
    ],
  });
}

const bins = (x: Float32Array) => Math.min(2, Math.floor(3 * x[0]));

describe('knockoff rewards', () => {
  it('certainty is the gap between the two largest probabilities', () => {
    expect(certaintyReward([0.1, 0.7, 0.2])).toBeCloseTo(0.5, 12);
    expect(certaintyReward([0.45, 0.1, 0.45])).toBe(0);
    expect(certaintyReward([0, 0, 1])).toBe(1);
  });

  it('diversity sums the positive excess over the mean', () => {
    expect(diversityReward([0.6, 0.3, 0.1], [0.2, 0.5, 0.3])).toBeCloseTo(0.4, 12);
    expect(diversityReward([0.2, 0.5, 0.3], [0.2, 0.5, 0.3])).toBe(0);
  });

  it('loss is the cross-entropy, finite where the thief puts an exact 0', () => {
    const want = -0.5 * Math.log(0.25) - 0.5 * Math.log(0.5);
    expect(lossReward([0.5, 0.5, 0], [0.25, 0.5, 0.25])).toBeCloseTo(want, 12);
    // The unguarded formula gives −1·log 0 = ∞ here; the floor gives −log 1e-12.
    expect(lossReward([0, 1, 0], [0.2, 0, 0.8])).toBeCloseTo(-Math.log(PROB_FLOOR), 9);
    expect(lossReward([0, 1, 0], [0.2, 0, 0.8])).toBeCloseTo(27.631021115928547, 9);
    // A zero target with a zero probability adds nothing (not 0·(−∞) = NaN).
    expect(lossReward([1, 0, 0], [1, 0, 0])).toBe(0);
  });

  it("'div' averages the last `window` answers, the current one included", () => {
    const r = new KnockoffRewards('div', 2);
    const q = [1 / 3, 1 / 3, 1 / 3];
    expect(r.next([1, 0, 0], q)).toBe(0);
    // mean of [1,0,0] and [0,1,0] is [.5,.5,0]: excess of [0,1,0] is 0.5.
    expect(r.next([0, 1, 0], q)).toBeCloseTo(0.5, 12);
    // window 2: mean of [0,1,0] and [0,0,1] is [0,.5,.5]: excess 0.5 (the first answer dropped).
    expect(r.next([0, 0, 1], q)).toBeCloseTo(0.5, 12);
  });

  it("'all' equals the mean of each reward standardised over the rewards so far (float64 recomputation)", () => {
    const n = 40;
    const window = 5;
    const ys: number[][] = [];
    const qs: number[][] = [];
    for (let t = 0; t < n; t++) {
      const a = values(K, 300 + t, 0.01, 1);
      const b = values(K, 400 + t, 0.01, 1);
      const sa = a.reduce((u, v) => u + v, 0);
      const sb = b.reduce((u, v) => u + v, 0);
      ys.push(a.map((v) => v / sa));
      qs.push(b.map((v) => v / sb));
    }
    const r = new KnockoffRewards('all', window);
    const raw: number[][] = [];
    for (let t = 0; t < n; t++) {
      const recent = ys.slice(Math.max(0, t - window + 1), t + 1);
      const mean = [0, 1, 2].map((k) => recent.reduce((s, y) => s + y[k], 0) / recent.length);
      const sorted = [...ys[t]].sort((u, v) => v - u);
      raw.push([
        sorted[0] - sorted[1],
        ys[t].reduce((s, v, k) => s + Math.max(0, v - mean[k]), 0),
        -ys[t].reduce((s, v, k) => s + v * Math.log(qs[t][k]), 0),
      ]);
      let want = 0;
      for (let i = 0; i < 3; i++) {
        const seen = raw.map((row) => row[i]);
        const mu = seen.reduce((s, v) => s + v, 0) / seen.length;
        const sd = Math.sqrt(seen.reduce((s, v) => s + (v - mu) ** 2, 0) / seen.length);
        want += sd > 1e-8 ? (raw[t][i] - mu) / sd : 0;
      }
      expect(r.next(ys[t], qs[t])).toBeCloseTo(want / 3, 9);
    }
  });

  it('a one-hot victim and a thief with exact zeros give finite rewards of every kind', () => {
    for (const kind of ['cert', 'div', 'loss', 'all'] as const) {
      const r = new KnockoffRewards(kind, 10);
      for (let t = 0; t < 30; t++) {
        const y = [0, 0, 0];
        y[t % 3] = 1;
        const q = [0, 0, 0];
        q[(t + 1) % 3] = 1; // always wrong, with probability exactly 0 on the victim's label
        expect(Number.isFinite(r.next(y, q)), `${kind} at ${t}`).toBe(true);
      }
    }
  });
});

describe('gradient bandit', () => {
  it('matches the update H(a) += α(r − r̄)(1 − π(a)), H(b) −= α(r − r̄)π(b) by hand', () => {
    const b = new GradientBandit(3, 0.5);
    const open = [true, true, true];
    // First reward: the baseline is that reward, so nothing moves.
    b.update(0, 1, open);
    expect(Array.from(b.h)).toEqual([0, 0, 0]);
    // Second: r̄ = 2, α(r − r̄) = 0.5, π = 1/3 each.
    b.update(1, 3, open);
    expect(b.baseline).toBe(2);
    expect(b.h[0]).toBeCloseTo(-1 / 6, 12);
    expect(b.h[1]).toBeCloseTo(1 / 3, 12);
    expect(b.h[2]).toBeCloseTo(-1 / 6, 12);
    const p = b.probabilities(open);
    const e = [Math.exp(-1 / 6), Math.exp(1 / 3), Math.exp(-1 / 6)];
    const total = e[0] + e[1] + e[2];
    for (let a = 0; a < 3; a++) expect(p[a]).toBeCloseTo(e[a] / total, 12);
  });

  it('leaves a closed arm alone and gives it probability 0', () => {
    const b = new GradientBandit(3, 1);
    const open = [true, false, true];
    b.update(0, 0, open);
    b.update(2, 2, open); // r̄ = 1, α(r − r̄) = 1, π = ½ on the two open arms
    expect(b.h[1]).toBe(0);
    expect(b.h[2]).toBeCloseTo(0.5, 12);
    expect(b.h[0]).toBeCloseTo(-0.5, 12);
    const p = b.probabilities(open);
    expect(p[1]).toBe(0);
    expect(p[0] + p[2]).toBeCloseTo(1, 12);
  });
});

describe('knockoff and copycat runs', () => {
  const fast = { epochs: 1, batchSize: 32, lr: 0.05, queryBatch: 50 };

  it('adaptive policy against a one-hot victim: finite rewards, hard targets, the budget spent', async () => {
    const victim = linearBlackBox(victimModel, { labelsOnly: true });
    const c = knockoffSchema.parse({
      ...fast,
      budget: 120,
      policy: 'adaptive',
      roundSize: 8,
      seed: 4,
    });
    const stolen = await knockoff(victim, pool(300, 11, bins), c, { buildThief: linearThief });
    stolen.model.dispose();
    const d = stolen.details as {
      pulls: number[];
      probabilities: number[];
      meanReward: number;
      nonFiniteRewards: number;
      rounds: number;
    };
    expect(stolen.targets).toBe('hard');
    expect(stolen.queriesUsed).toBe(120);
    expect(victim.calls.reduce((a, b) => a + b, 0)).toBe(120);
    expect(d.nonFiniteRewards).toBe(0);
    expect(Number.isFinite(d.meanReward)).toBe(true);
    expect(d.probabilities.every(Number.isFinite)).toBe(true);
    expect(d.probabilities.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(d.pulls.reduce((a, b) => a + b, 0)).toBe(120);
    expect(d.rounds).toBe(15);
  });

  it('adaptive policy with the certainty reward favours the pool class the victim is sure about', async () => {
    // Class 0: points the victim is sure of (top-1 − top-2 above the median); class 1: the rest.
    const all = pool(2000, 12, () => 0, 2);
    const certainty = Array.from({ length: 2000 }, (_, i) =>
      certaintyReward(victimProbs(all.x.subarray(i * D, (i + 1) * D))),
    );
    const median = [...certainty].sort((a, b) => a - b)[1000];
    const labelled = { ...all, labels: Int32Array.from(certainty, (v) => (v > median ? 0 : 1)) };
    const c = knockoffSchema.parse({
      ...fast,
      budget: 400,
      policy: 'adaptive',
      reward: 'cert',
      alpha: 0.5,
      roundSize: 20,
      seed: 5,
    });
    const stolen = await knockoff(linearBlackBox(victimModel), labelled, c, {
      buildThief: linearThief,
    });
    stolen.model.dispose();
    const { pulls, probabilities } = stolen.details as { pulls: number[]; probabilities: number[] };
    expect(pulls[0]).toBeGreaterThan(1.5 * pulls[1]);
    expect(probabilities[0]).toBeGreaterThan(0.8);
  });

  it('random policy: soft targets from scores, hard when asked; a pool smaller than the budget is spent whole', async () => {
    const small = pool(30, 13, bins);
    for (const policy of ['random', 'adaptive'] as const) {
      const victim = linearBlackBox(victimModel);
      const c = knockoffSchema.parse({ ...fast, budget: 100, policy, seed: 1 });
      const stolen = await knockoff(victim, small, c, { buildThief: linearThief });
      stolen.model.dispose();
      expect(stolen.queriesUsed).toBe(30);
      expect(stolen.transferSize).toBe(30);
      expect(stolen.targets).toBe('soft');
    }
    const hard = knockoffSchema.parse({ ...fast, budget: 10, targets: 'hard' });
    const h = await knockoff(linearBlackBox(victimModel), small, hard, { buildThief: linearThief });
    h.model.dispose();
    expect(h.targets).toBe('hard');
    const cc = await copycat(
      linearBlackBox(victimModel),
      small,
      copycatSchema.parse({ budget: 10 }),
      {
        buildThief: linearThief,
      },
    );
    cc.model.dispose();
    expect(cc.targets).toBe('hard');
  });

  it('refuses a pool whose images do not fit the victim', async () => {
    const wrong: Dataset = {
      name: 'wrong',
      x: new Float32Array(2 * 9),
      shape: [2, 3, 3, 1],
      labels: new Int32Array(2),
      numClasses: 3,
    };
    await expect(
      knockoff(linearBlackBox(victimModel), wrong, knockoffSchema.parse({ budget: 5 }), {
        buildThief: linearThief,
      }),
    ).rejects.toThrow(
      "stealing: pool 'wrong' holds examples of shape [3, 3, 1]; the victim takes [4, 4, 1]",
    );
  });
});
