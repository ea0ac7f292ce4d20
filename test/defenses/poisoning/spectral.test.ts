/**
 * Spectral signatures recover a planted poison cluster in controlled features (a model whose
 * penultimate layer is the identity on its input), the power iteration finds a known top
 * eigenvector, and the inspection scores (precision, recall, FPR, ROC AUC with ties) equal
 * hand-computed values.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../../src/data/index.js';
import { rocAuc } from '../../../src/defenses/detection/metrics.js';
import { scoreInspection } from '../../../src/defenses/poisoning/inspection.js';
import { spectralSignatures, topEigenvector } from '../../../src/defenses/poisoning/spectral.js';
import { Rng } from '../../../src/engine/rng.js';
import { TfjsClassifier } from '../../../src/models/index.js';
import { caught } from '../../models/tmp.js';

/** A classifier on [2, 2, 1] inputs whose penultimate features are the 4 input values. */
function identityFeatures(): TfjsClassifier {
  const features = tfl.layers.dense({ units: 4, inputShape: [4], useBias: false, name: 'id' });
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [2, 2, 1] }),
      features,
      tfl.layers.dense({ units: 2 }),
    ],
  });
  features.setWeights([tf.eye(4)]);
  return new TfjsClassifier(model);
}

/** 200 examples per class; in class 0, the first `poisoned` are shifted by 0.3 along axis 0. */
function planted(poisoned: number): { data: Dataset; indices: number[] } {
  const rng = new Rng(4);
  const n = 400;
  const x = new Float32Array(n * 4);
  const labels = new Int32Array(n);
  const indices: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = i < 200 ? 0 : 1;
    labels[i] = y;
    for (let j = 0; j < 4; j++) x[i * 4 + j] = (y === 0 ? 0.5 : 0.3) + 0.05 * rng.normal();
    if (y === 0 && i < poisoned) {
      x[i * 4] += 0.3;
      indices.push(i);
    }
  }
  return { data: { name: 'planted', x, labels, shape: [n, 2, 2, 1], numClasses: 2 }, indices };
}

describe('spectral signatures', () => {
  it('flags a planted cluster of 20 in 200, and nothing of the kind in the clean class', () => {
    const model = identityFeatures();
    const { data, indices } = planted(20);
    const before = tf.memory().numTensors;
    const r = spectralSignatures(model, data, { expectedFraction: 0.1, seed: 1 });
    expect(tf.memory().numTensors).toBe(before);
    // 1.5 · 0.1 · 200 = 30 flagged per class.
    expect(r.flagged).toHaveLength(60);
    const s = scoreInspection(r, indices);
    expect(s.recall).toBe(1);
    expect(s.precision).toBeCloseTo(20 / 60, 10);
    expect(s.falsePositiveRate).toBeCloseTo(40 / 380, 10);
    // Within the poisoned class the scores separate the poisons almost perfectly.
    expect(rocAuc(r.scores.subarray(20, 200), r.scores.subarray(0, 20))).toBeGreaterThan(0.99);
    expect(r.perClass).toEqual([
      { class: 0, examples: 200, flagged: 30 },
      { class: 1, examples: 200, flagged: 30 },
    ]);
    // Seeded: the same seed gives the same result.
    expect(spectralSignatures(model, data, { expectedFraction: 0.1, seed: 1 }).flagged).toEqual(
      r.flagged,
    );
    model.dispose();
  });

  it('refuses bad options, naming them', async () => {
    const model = identityFeatures();
    const { data } = planted(0);
    for (const [config, pattern] of [
      [{ expectedFraction: 0 }, /expectedFraction/],
      [{ expectedFraction: 0.9 }, /expectedFraction/],
      [{ iterations: 0 }, /iterations/],
      [{ colour: 'red' }, /colour/],
    ] as const) {
      const e = await caught(() => spectralSignatures(model, data, config as never));
      expect(e.code).toBe('BAD_OPTION');
      expect(e.message).toMatch(pattern);
    }
    model.dispose();
  });
});

describe('the pieces', () => {
  it('power iteration finds the top eigenvector of a known matrix', () => {
    // [[2, 1], [1, 2]]: eigenvalues 3 and 1, the top one along (1, 1)/√2.
    const v = topEigenvector(Float64Array.from([2, 1, 1, 2]), 2, 50, new Rng(3));
    expect(Math.abs(v[0])).toBeCloseTo(Math.SQRT1_2, 8);
    expect(v[0] * v[1]).toBeGreaterThan(0);
  });

  it('the flagged-set scores and the AUC equal hand-computed values, ties included', () => {
    const s = scoreInspection(
      {
        method: 't',
        flagged: [0, 1, 5],
        scores: Float64Array.from([9, 8, 1, 2, 3, 7]),
        perClass: [],
      },
      [0, 2],
    );
    // Flagged 0 (hit), 1 and 5 (false); poisoned 0 and 2; 4 clean examples. AUC: poisoned
    // scores 9 and 1 against clean 8, 2, 3, 7 — 9 beats all four, 1 none: 4 of 8 pairs.
    expect(s).toEqual({ precision: 1 / 3, recall: 1 / 2, falsePositiveRate: 2 / 4, auc: 0.5 });
    // A tie between a poisoned and a clean score counts one half: (0.5 + 1) / 2.
    const tie = scoreInspection(
      { method: 't', flagged: [], scores: Float64Array.from([1, 1, 2]), perClass: [] },
      [1, 2],
    );
    expect(tie.auc).toBe(0.75);
    expect(tie.precision).toBeNaN();
  });
});
