/**
 * Saved detectors: every registry detector fitted, calibrated, saved and loaded back scores the
 * same inputs identically (bit for bit) with the same threshold and no leaked tensors; what
 * cannot be saved is refused by name; loading refuses another model (naming both content
 * hashes), another format version, a malformed detector.json (by path) and a truncated
 * arrays.bin. The model's content hash: equal for the same weights loaded twice, different when
 * one weight or the bounds change. Score quantiles against hand-computed values.
 */
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  classifierHash,
  type Detector,
  FeatureSqueezingDetector,
  KdeDetector,
  LearnedDetector,
  LidDetector,
  loadDetector,
  MagnetDetector,
  MahalanobisDetector,
  StripDetector,
  saveDetector,
} from '../../../src/defenses/detection/index.js';
import { quantiles } from '../../../src/defenses/detection/persist.js';
import { loadClassifier, saveLayersModel, TfjsClassifier } from '../../../src/models/index.js';
import { caught, tempDir } from '../../models/tmp.js';
import { SHAPE, syntheticSet, tinyModel, trainTiny } from './helpers.js';

const tmp = await tempDir('persist');
const model = tinyModel();
let train: ReturnType<typeof syntheticSet>;
let cal: ReturnType<typeof syntheticSet>;
let test: ReturnType<typeof syntheticSet>;

beforeAll(async () => {
  train = syntheticSet(240, 11, 0.03);
  cal = syntheticSet(100, 13, 0.03);
  test = syntheticSet(60, 12, 0.03);
  await trainTiny(model, train.x, train.labels);
});
afterAll(async () => {
  for (const s of [train, cal, test]) tf.dispose([s.x, s.adv, s.labels]);
  await tmp.cleanup();
});

/** A fitted detector calibrated at 10% on the calibration set. */
async function fitted(make: () => Detector): Promise<Detector> {
  const det = make();
  await det.fit(model, train.x, train.labels, train.adv);
  det.calibrate(cal.x, 0.1);
  return det;
}

const cases: [string, () => Detector][] = [
  ['squeeze', () => new FeatureSqueezingDetector({ bits: 3, median: null })],
  [
    'magnet',
    () =>
      new MagnetDetector(undefined, {
        metric: 'jsd',
        train: { epochs: 2, batchSize: 64, filters: 2, seed: 5 },
      }),
  ],
  ['mahalanobis', () => new MahalanobisDetector({ ridge: 1e-2 })],
  ['strip', () => new StripDetector({ samples: 7, seed: 9 })],
  ['lid', () => new LidDetector({ k: 10, referenceSize: 80, seed: 4 })],
  ['kde', () => new KdeDetector({ seed: 3 })],
  ['learned', () => new LearnedDetector({ hidden: 6, steps: 40, seed: 8 })],
];

describe('save → load round trip', () => {
  for (const [name, make] of cases) {
    it(`${name}: identical scores and threshold, settings kept, no leaks`, async () => {
      const det = await fitted(make);
      const dir = tmp.next();
      const calScores = det.score(cal.x);
      const file = await saveDetector(dir, det, model, {
        fpr: 0.1,
        calibrationScores: calScores,
        options: { seed: 1 },
      });
      expect(file.detector).toBe(name);
      expect(file.threshold).toBe(det.threshold);
      expect(file.calibration.fpr).toBe(0.1);
      expect(file.model.contentHash).toBe(classifierHash(model));
      expect(file.calibration.scoreQuantiles?.values).toEqual(
        quantiles(calScores, file.calibration.scoreQuantiles!.levels),
      );
      const written = JSON.parse(readFileSync(path.join(dir, 'detector.json'), 'utf8'));
      expect(written).toEqual(JSON.parse(JSON.stringify(file)));
      const before = tf.memory().numTensors;
      const { detector: back, saved } = await loadDetector(dir, model);
      expect(back.name).toBe(name);
      expect(back.constructor).toBe(det.constructor);
      expect(saved.config).toEqual(file.config);
      expect(back.threshold).toBe(det.threshold);
      for (const x of [test.x, test.adv]) {
        expect(back.score(x)).toEqual(det.score(x));
        expect(back.detect(x)).toEqual(det.detect(x));
      }
      // The flagged fraction of the calibration set is what the threshold was set for.
      expect(back.detect(cal.x).filter(Boolean).length).toBeLessThanOrEqual(10);
      back.dispose();
      expect(tf.memory().numTensors).toBe(before);
      det.dispose();
    });
  }

  it('arrays keep their dtype: float64 regression weights come back exactly', async () => {
    const det = await fitted(() => new LidDetector({ k: 10, referenceSize: 80 }));
    const dir = tmp.next();
    const file = await saveDetector(dir, det, model, { fpr: 0.1 });
    expect(file.arrays['logistic.w'].dtype).toBe('float64');
    expect(file.arrays['references.0'].dtype).toBe('float32');
    const bytes = statSync(path.join(dir, 'arrays.bin')).size;
    // Each array padded to 8 bytes: the references [80, width] (float32) of every layer that is
    // not a pass-through (dense 12, dense 8, the logits' 2) and the regression's mean, std and w
    // (float64, one entry per layer).
    const padded = (bytes: number) => Math.ceil(bytes / 8) * 8;
    const widths = [12, 8, 2];
    const expected =
      widths.reduce((s, w) => s + padded(80 * w * 4), 0) + 3 * padded(widths.length * 8);
    expect(bytes).toBe(expected);
    const { detector: back } = await loadDetector(dir, model);
    const [a, b] = [det, back].map((d) => (d as LidDetector).exportState().arrays['logistic.w']);
    expect(b.data).toBeInstanceOf(Float64Array);
    expect(b.data).toEqual(a.data);
    back.dispose();
    det.dispose();
  });

  it('saving again into a saved detector folder replaces it', async () => {
    const dir = tmp.next();
    const a = await fitted(() => new MahalanobisDetector());
    await saveDetector(dir, a, model, { fpr: 0.1 });
    const b = await fitted(() => new StripDetector({ samples: 3 }));
    await saveDetector(dir, b, model, { fpr: 0.1 });
    const { detector } = await loadDetector(dir, model);
    expect(detector.name).toBe('strip');
    expect(detector.score(test.x)).toEqual(b.score(test.x));
    for (const d of [a, b, detector]) d.dispose();
  });
});

describe('what cannot be saved is refused by name', () => {
  it('a MagNet detector around a given autoencoder', async () => {
    const identity = { reconstruct: (x: tf.Tensor) => tf.clone(x) };
    const det = new MagnetDetector(identity);
    await det.fit(model, train.x);
    det.calibrate(cal.x, 0.1);
    const e = await caught(() => saveDetector(tmp.next(), det, model, { fpr: 0.1 }));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toMatch(/^magnet: the autoencoder was given to the detector/);
  });

  it('a detector outside the registry', async () => {
    const custom = {
      name: 'zebra',
      gradient: 'none',
      threshold: 1,
      fit: async () => {},
      scoreTensor: (x: tf.Tensor) => tf.zeros([x.shape[0]]),
      score: (x: tf.Tensor) => new Float32Array(x.shape[0]),
      calibrate: () => 1,
      detect: (x: tf.Tensor) => new Array(x.shape[0]).fill(false),
      dispose: () => {},
    } satisfies Detector;
    const e = await caught(() => saveDetector(tmp.next(), custom, model, { fpr: 0.1 }));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toMatch(/detector 'zebra' cannot be saved \(these can: squeeze, magnet/);
  });

  it('an uncalibrated detector, a bad fpr, and a folder holding other files', async () => {
    const det = new MahalanobisDetector();
    await det.fit(model, train.x, train.labels);
    let e = await caught(() => saveDetector(tmp.next(), det, model, { fpr: 0.1 }));
    expect(e.message).toMatch(/mahalanobis has threshold Infinity: calibrate it/);
    det.calibrate(cal.x, 0.1);
    e = await caught(() => saveDetector(tmp.next(), det, model, { fpr: 1 }));
    expect(e.message).toMatch(/fpr must be a false-positive rate strictly between 0 and 1, got 1/);
    const dir = tmp.next();
    await saveDetector(dir, det, model, { fpr: 0.1 });
    writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    e = await caught(() => saveDetector(dir, det, model, { fpr: 0.1 }));
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toMatch(/holds other files/);
    expect(readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    det.dispose();
  });

  it('a classifier that is not a loaded model has no content hash', async () => {
    const plain = {
      inputShape: SHAPE,
      numClasses: 2,
      bounds: [0, 1] as [number, number],
      logits: (x: tf.Tensor) => model.logits(x),
    };
    expect(() => classifierHash(plain)).toThrow(/only a loaded model \(TfjsClassifier\)/);
  });
});

describe('loading refuses what does not fit', () => {
  let dir: string;
  let det: Detector;
  beforeAll(async () => {
    det = await fitted(() => new MahalanobisDetector());
    dir = tmp.next();
    await saveDetector(dir, det, model, { fpr: 0.1 });
  });
  afterAll(() => det.dispose());

  /** A copy of the saved folder with detector.json edited by `edit`. */
  function edited(edit: (j: Record<string, unknown>) => void): string {
    const copy = tmp.next();
    cpSync(dir, copy, { recursive: true });
    const file = path.join(copy, 'detector.json');
    const j = JSON.parse(readFileSync(file, 'utf8'));
    edit(j);
    writeFileSync(file, JSON.stringify(j));
    return copy;
  }

  it('another model: names both content hashes', async () => {
    const other = tinyModel(4);
    const e = await caught(() => loadDetector(dir, other));
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toContain(classifierHash(model));
    expect(e.message).toContain(classifierHash(other));
    expect(e.message).toMatch(
      /was fitted for the model with content hash [0-9a-f]{64}, not this one/,
    );
    other.dispose();
  });

  it('another format version', async () => {
    const e = await caught(() =>
      loadDetector(
        edited((j) => (j.version = 2)),
        model,
      ),
    );
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(/detector\.json has format version 2; this parry reads version 1/);
  });

  it('not a saved detector, or no detector.json at all', async () => {
    let e = await caught(() =>
      loadDetector(
        edited((j) => (j.format = 'other')),
        model,
      ),
    );
    expect(e.message).toMatch(/is not a saved detector \(format "other"/);
    e = await caught(() => loadDetector(tmp.root, model));
    expect(e.message).toMatch(/cannot read detector\.json: ENOENT/);
  });

  it('malformed fields, each named by its path', async () => {
    const e = await caught(() =>
      loadDetector(
        edited((j) => {
          j.threshold = 'high';
          (j.config as Record<string, unknown>).zap = 1;
          (j.model as Record<string, unknown>).contentHash = 'abc';
        }),
        model,
      ),
    );
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(/threshold: /);
    expect(e.message).toMatch(/model\.contentHash: expected 64 lowercase hex digits/);
    const c = await caught(() =>
      loadDetector(
        edited((j) => ((j.config as Record<string, unknown>).zap = 1)),
        model,
      ),
    );
    expect(c.message).toMatch(/config\.zap: unknown option: mahalanobis does not read 'zap'/);
    const m = await caught(() =>
      loadDetector(
        edited((j) => (j.models = ['../up'])),
        model,
      ),
    );
    expect(m.message).toMatch(/models\[0\]: expected a plain folder name/);
  });

  it('a truncated arrays.bin, and an array of the wrong shape', async () => {
    const copy = edited(() => {});
    const bin = path.join(copy, 'arrays.bin');
    writeFileSync(bin, readFileSync(bin).subarray(0, 100));
    const e = await caught(() => loadDetector(copy, model));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(
      /arrays\.bin is 100 bytes; array '(means|precision)' .* does not fit/,
    );
    const shape = await caught(() =>
      loadDetector(
        edited((j) => {
          const a = (j.arrays as Record<string, { shape: number[] }>).means;
          a.shape = [a.shape[0] - 1, a.shape[1]];
        }),
        model,
      ),
    );
    expect(shape.message).toMatch(
      /mahalanobis: array 'means' has shape \[1, 8\], expected \[2, \?\]/,
    );
  });
});

describe('classifierHash', () => {
  it('the same weights loaded twice hash the same; one changed weight or other bounds do not', async () => {
    const dir = tmp.next();
    await saveLayersModel(model.layersModel!, dir, { metadata: { bounds: [0, 1] } });
    const [a, b] = [await loadClassifier(dir), await loadClassifier(dir)];
    expect(classifierHash(a)).toBe(classifierHash(b));
    expect(classifierHash(a)).toBe(classifierHash(model));
    const dense = a.layersModel!.layers[1];
    const [kernel, bias] = dense.getWeights();
    const nudged = tf.tidy(() =>
      tf.add(kernel, tf.mul(tf.reshape(tf.oneHot([0], kernel.size), kernel.shape), 1e-6)),
    );
    dense.setWeights([nudged, bias]);
    nudged.dispose();
    expect(classifierHash(a)).not.toBe(classifierHash(b));
    const wider = new TfjsClassifier(b.layersModel!, { bounds: [0, 2] });
    expect(classifierHash(wider)).not.toBe(classifierHash(b));
    a.dispose();
    b.dispose();
  });
});

describe('quantiles', () => {
  it('interpolate linearly between order statistics (hand-computed)', () => {
    // Sorted 1..10: position (n − 1)·q = 9q; q = 0.25 → 3.25 → 1 + 2.25 = 3.25; q = 0.9 → 9.1.
    const v = [7, 1, 10, 3, 5, 2, 9, 4, 8, 6];
    const got = quantiles(v, [0, 0.25, 0.5, 0.9, 1]);
    [1, 3.25, 5.5, 9.1, 10].forEach((want, i) => {
      expect(got[i]).toBeCloseTo(want, 12);
    });
    expect(quantiles([4], [0.01, 0.99])).toEqual([4, 4]);
  });
});
