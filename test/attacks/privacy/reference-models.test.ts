import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  applyQuery,
  membershipDesign,
  membersOf,
  queriesOf,
  queryLogits,
  trainPopulation,
} from '../../../src/attacks/privacy/reference-models.js';
import { syntheticDataset } from '../../../src/data/index.js';
import { TfjsClassifier } from '../../../src/models/tfjs-classifier.js';

describe('membershipDesign', () => {
  it('puts every example in exactly ⌊m/2⌋ models, reproducibly, and mixes the subsets', () => {
    for (const m of [2, 5, 17]) {
      const rows = membershipDesign(300, m, 7);
      expect(rows).toHaveLength(m);
      for (let i = 0; i < 300; i++) {
        let count = 0;
        for (const r of rows) count += r[i];
        expect(count).toBe(Math.floor(m / 2));
      }
      expect(membershipDesign(300, m, 7)).toEqual(rows);
    }
    const rows = membershipDesign(4000, 17, 1);
    // Each model holds about half the examples (8/17 of them), not a fixed block.
    for (const r of rows) {
      const members = membersOf(r).length;
      expect(Math.abs(members - (4000 * 8) / 17)).toBeLessThan(150);
    }
    expect(membersOf(rows[0])).not.toEqual(membersOf(rows[1]));
    expect(membershipDesign(300, 5, 8)).not.toEqual(membershipDesign(300, 5, 7));
  });

  it('refuses degenerate sizes', () => {
    expect(() => membershipDesign(1, 4, 0)).toThrow(/n must be an integer >= 2, got 1/);
    expect(() => membershipDesign(10, 1, 0)).toThrow(/m must be an integer >= 2, got 1/);
  });
});

describe('queries', () => {
  it('lists identity first and the sizes documented', () => {
    expect(queriesOf('none')).toEqual([{ flip: false, dx: 0, dy: 0 }]);
    expect(queriesOf('flip')).toHaveLength(2);
    const all = queriesOf('flip-shift');
    expect(all).toHaveLength(18);
    expect(all[0]).toEqual({ flip: false, dx: 0, dy: 0 });
  });

  it('mirrors and shifts pixels as a direct index computation does', () => {
    const [h, w] = [5, 6];
    const values = Float32Array.from({ length: 2 * h * w }, (_, i) => i);
    const x = tf.tensor4d(values, [2, h, w, 1]);
    // Reflection without repeating the edge: index -1 → 1, w → w - 2.
    const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
    for (const q of [
      { flip: true, dx: 0, dy: 0 },
      { flip: false, dx: 2, dy: -1 },
      { flip: true, dx: -2, dy: 2 },
    ]) {
      const got = applyQuery(x, q);
      const data = got.dataSync();
      for (let b = 0; b < 2; b++)
        for (let r = 0; r < h; r++)
          for (let c = 0; c < w; c++) {
            // out[r][c] = flipped[r - dy][c - dx] with reflection at the borders.
            const sr = reflect(r - q.dy, h);
            let sc = reflect(c - q.dx, w);
            if (q.flip) sc = w - 1 - sc;
            expect(data[(b * h + r) * w + c]).toBe(values[(b * h + sr) * w + sc]);
          }
      got.dispose();
    }
    x.dispose();
  });
});

describe('trainPopulation and queryLogits', () => {
  it('trains target and references on their halves and reads their logits without leaks', async () => {
    const pool = syntheticDataset({ shape: [6, 6, 1], numClasses: 3, n: 60, seed: 2, noise: 0.1 });
    const before = tf.memory().numTensors;
    const pop = await trainPopulation(pool, {
      referenceModels: 2,
      arch: 'mlp',
      epochs: 1,
      batchSize: 16,
      seed: 3,
    });
    expect(pop.models).toHaveLength(3);
    expect(pop.membership).toEqual(membershipDesign(60, 3, 3));
    expect(pop.seconds).toHaveLength(3);
    const queries = queriesOf('flip');
    const model = new TfjsClassifier(pop.models[0]);
    const logits = queryLogits(model, pool, queries);
    expect(logits).toHaveLength(2);
    expect(logits[0]).toHaveLength(60 * 3);
    // The identity query equals a direct forward pass; the flip one a forward pass on flipped x.
    const x = tf.tensor4d(pool.x, [60, 6, 6, 1]);
    const direct = tf.tidy(() => model.logits(x));
    const flipped = tf.tidy(() => model.logits(tf.reverse(x, 2)));
    const d = direct.dataSync();
    const f = flipped.dataSync();
    for (let i = 0; i < d.length; i++) {
      expect(logits[0][i]).toBeCloseTo(d[i], 5);
      expect(logits[1][i]).toBeCloseTo(f[i], 5);
    }
    tf.dispose([x, direct, flipped]);
    for (const m of pop.models) m.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
