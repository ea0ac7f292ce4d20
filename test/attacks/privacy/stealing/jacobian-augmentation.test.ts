/**
 * Jacobian-based augmentation (Papernot et al. 2017): the λ schedule, the step x + λ·sign(∇F_y)
 * against the closed form on a linear model, and the run itself — every point it asks the victim
 * about recomputed independently (float64) from the thief's weights at that moment, the set
 * doubling each round until the budget is spent.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  jacobianAugmentation,
  jacobianSchema,
  jacobianStep,
  lambdaAt,
} from '../../../../src/attacks/privacy/stealing/index.js';
import type { Dataset } from '../../../../src/data/dataset.js';
import type { QueryClassifier } from '../../../../src/models/classifier.js';
import { LinearClassifier, linearBlackBox, values } from '../../helpers.js';

const SHAPE = [4, 4, 1];
const D = 16;
const K = 3;
const weights = Array.from({ length: D }, (_, i) => values(K, 500 + i, -1.5, 1.5));
const victimModel = new LinearClassifier(
  SHAPE,
  weights,
  [0, 1, 2].map((k) => -0.5 * weights.reduce((a, row) => a + row[k], 0)),
);

/** clip(x + step·sign(W[:, y]), 0, 1): the Jacobian step on a linear model, in float64. */
function expectedStep(x: ArrayLike<number>, w: number[][], y: number, step: number): number[] {
  return Array.from(x, (v, j) => Math.min(1, Math.max(0, v + step * Math.sign(w[j][y]))));
}

describe('jacobian augmentation', () => {
  it('λρ = λ·(−1)^⌊ρ/τ⌋', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map((r) => lambdaAt(r, 0.1, 3))).toEqual([
      0.1, 0.1, 0.1, -0.1, -0.1, -0.1, 0.1, 0.1, 0.1,
    ]);
    expect([0, 1, 2, 3].map((r) => lambdaAt(r, 0.5, 1))).toEqual([0.5, -0.5, 0.5, -0.5]);
  });

  it('a step is x + λ·sign(∂F_y/∂x) = x + λ·sign(W[:, y]) on a linear model, clipped to bounds', () => {
    const n = 6;
    const xs = values(n * D, 9, 0.2, 0.8);
    xs[3] = 0.95; // pushed past 1 when its weight sign is +, to check the clip
    xs[D + 5] = 0.02;
    const labels = [0, 1, 2, 0, 1, 2];
    for (const step of [0.1, -0.1]) {
      const before = tf.memory().numTensors;
      const out = tf.tidy(() =>
        jacobianStep(
          victimModel,
          tf.tensor(xs, [n, ...SHAPE]),
          tf.tensor1d(labels, 'int32'),
          step,
        ).dataSync(),
      );
      expect(tf.memory().numTensors).toBe(before);
      for (let i = 0; i < n; i++) {
        const want = expectedStep(xs.slice(i * D, (i + 1) * D), weights, labels[i], step);
        for (let j = 0; j < D; j++) expect(out[i * D + j]).toBeCloseTo(want[j], 6);
      }
    }
  });

  /**
   * A linear thief whose model the test keeps (to read its weights when the victim is asked),
   * and a victim that records every query's rows and the labels it gave.
   */
  function setUp() {
    let thief: tfl.LayersModel | undefined;
    const buildThief = (seed: number) => {
      thief = tfl.sequential({
        layers: [
          tfl.layers.flatten({ inputShape: SHAPE }),
          tfl.layers.dense({
            units: K,
            kernelInitializer: tfl.initializers.glorotUniform({ seed }),
          }),
        ],
      });
      return thief;
    };
    const inner = linearBlackBox(victimModel, { labelsOnly: true });
    const queries: { rows: number[][]; labels: number[]; thiefW: number[][] | null }[] = [];
    const victim: QueryClassifier = {
      ...inner,
      predict: async (x) => {
        const rows = x.arraySync() as number[][][][];
        const answer = await inner.predict(x);
        const onehot = answer.arraySync();
        queries.push({
          rows: rows.map((r) => r.flat(2)),
          labels: onehot.map((r) => r.indexOf(1)),
          thiefW: thief ? (thief.getWeights()[0].arraySync() as number[][]) : null,
        });
        return answer;
      },
    };
    return { victim, buildThief, queries };
  }

  const pool: Dataset = {
    name: 'pool',
    x: Float32Array.from(values(200 * D, 21)),
    shape: [200, ...SHAPE],
    labels: new Int32Array(200),
    numClasses: 1,
  };

  it('asks the victim about exactly the points x + λρ·sign(∇F_y) of the thief at that round', async () => {
    const { victim, buildThief, queries } = setUp();
    const c = jacobianSchema.parse({
      budget: 80,
      seedSize: 10,
      lambda: 0.1,
      tau: 2,
      epochs: 3,
      lr: 0.05,
      queryBatch: 1000,
      seed: 2,
    });
    const stolen = await jacobianAugmentation(victim, pool, c, { buildThief });
    stolen.model.dispose();
    expect(stolen.details).toEqual({ rounds: 3, setSizes: [10, 20, 40, 80] });
    expect(stolen.queriesUsed).toBe(80);
    expect(stolen.targets).toBe('hard');
    expect(queries.map((q) => q.rows.length)).toEqual([10, 10, 20, 40]);
    const set = { rows: [...queries[0].rows], labels: [...queries[0].labels] };
    for (let rho = 0; rho < 3; rho++) {
      const q = queries[rho + 1];
      const step = [0.1, 0.1, -0.1][rho];
      for (let i = 0; i < q.rows.length; i++) {
        const want = expectedStep(set.rows[i], q.thiefW!, set.labels[i], step);
        for (let j = 0; j < D; j++) expect(q.rows[i][j]).toBeCloseTo(want[j], 5);
      }
      set.rows.push(...q.rows);
      set.labels.push(...q.labels);
    }
  });

  it('the last round moves only as many points as queries remain', async () => {
    const { victim, buildThief, queries } = setUp();
    const c = jacobianSchema.parse({ budget: 47, seedSize: 10, epochs: 1, queryBatch: 1000 });
    const stolen = await jacobianAugmentation(victim, pool, c, { buildThief });
    stolen.model.dispose();
    expect(queries.map((q) => q.rows.length)).toEqual([10, 10, 20, 7]);
    expect(stolen.details).toEqual({ rounds: 3, setSizes: [10, 20, 40, 47] });
    // Each of the 7 comes from one of the 40 points of the set, moved by λ = +0.1 (ρ = 2 < τ = 3).
    const set = queries.slice(0, 3).flatMap((q) => q.rows.map((r, i) => ({ r, y: q.labels[i] })));
    for (const row of queries[3].rows) {
      const match = set.some(({ r, y }) =>
        expectedStep(r, queries[3].thiefW!, y, 0.1).every((v, j) => Math.abs(v - row[j]) < 1e-5),
      );
      expect(match).toBe(true);
    }
  });
});
