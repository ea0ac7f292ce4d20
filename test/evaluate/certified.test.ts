/**
 * Certified results: curves and per-example radii from constructed records, and a model whose
 * layers bound propagation does not support giving a record that says so (not an error).
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/index.js';
import { boundsResult, certifyBoundsCell, smoothingResult } from '../../src/evaluate/certified.js';
import { seededClassifier } from '../models/bounds/helpers.js';

describe('certified results', () => {
  it('bounds: accuracy per eps and the largest certified eps of the grid per example', () => {
    const r = boundsResult(
      'ibp',
      [0.01, 0.05, 0.1],
      [
        { certified: [1, 1, 0, 1], passes: 8, seconds: 1 },
        { certified: [1, 0, 0, 1], passes: 8, seconds: 1 },
        { certified: [0, 0, 0, 1], passes: 8, seconds: 2 },
      ],
    )!;
    expect(r.curve).toEqual([
      { radius: 0.01, accuracy: 0.75 },
      { radius: 0.05, accuracy: 0.5 },
      { radius: 0.1, accuracy: 0.25 },
    ]);
    expect(r.radii).toEqual([0.05, 0.01, 0, 0.1]);
    expect(r).toMatchObject({ method: 'ibp', norm: 'linf', seconds: 4, abstainRate: null });
    expect(boundsResult('crown', [0.1], [{ unsupported: 'no rule', seconds: 0 }])).toBeNull();
  });

  it('smoothing: certified accuracy counts correct predictions with radius >= r', () => {
    const r = smoothingResult(
      {
        predictions: [0, 1, -1, 2, 0],
        radii: [0.6, 0.3, 0, 1.2, 0.9],
        pALower: [],
        forwardPasses: 50,
        seconds: 1,
      },
      { sigma: 0.25, n0: 10, n: 40, alpha: 0.001, batchSize: 10, radii: [0, 0.5, 1] },
      [0, 1, 2, 2, 1],
    );
    expect(r.curve).toEqual([
      { radius: 0, accuracy: 3 / 5 },
      { radius: 0.5, accuracy: 2 / 5 },
      { radius: 1, accuracy: 1 / 5 },
    ]);
    expect(r.radii).toEqual([0.6, 0.3, 0, 1.2, 0]);
    expect(r.abstainRate).toBe(1 / 5);
  });

  it('a layer without a bound rule gives an unsupported record naming it', async () => {
    const model = seededClassifier(
      [
        tfl.layers.flatten({ inputShape: [2, 2, 1] }),
        tfl.layers.dense({ units: 3, activation: 'swish', name: 'sw' }),
      ],
      5,
    );
    const data: Dataset = {
      name: 'tiny',
      x: new Float32Array(8).fill(0.5),
      shape: [2, 2, 2, 1],
      labels: Int32Array.from([0, 1]),
      numClasses: 3,
    };
    const rec = await certifyBoundsCell(model, data, 'ibp', 0.1);
    expect('unsupported' in rec && rec.unsupported).toMatch(/Dense layer 'sw'.*swish/);
    model.dispose();
  });
});
