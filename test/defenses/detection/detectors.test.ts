/**
 * Every detector on a trivially separable case (flat grey images vs the same with big uniform
 * noise), closed forms (LID MLE, Mahalanobis against an independent float64 computation), the
 * feature-squeezing fixed point, threshold calibration and no leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Detector,
  FeatureSqueezingDetector,
  featureModel,
  fitTiedGaussians,
  jsd,
  KdeDetector,
  LearnedDetector,
  LidDetector,
  lidMle,
  lidTensor,
  MagnetDetector,
  MahalanobisDetector,
  minMahalanobis,
  readFeatures,
  rocAuc,
} from '../../../src/defenses/detection/index.js';
import { bitDepth, medianFilter } from '../../../src/defenses/detection/squeezers.js';
import { Rng } from '../../../src/engine/rng.js';
import { SHAPE, syntheticSet, tinyModel, trainTiny } from './helpers.js';

const model = tinyModel();
let train: ReturnType<typeof syntheticSet>;
let test: ReturnType<typeof syntheticSet>;

beforeAll(async () => {
  train = syntheticSet(240, 11);
  test = syntheticSet(100, 12);
  // KDE compares against training points of the predicted class: the model must be accurate.
  await trainTiny(model, train.x, train.labels);
});
afterAll(() => {
  tf.dispose([train.x, train.adv, train.labels, test.x, test.adv, test.labels]);
});

// Squeezing: clean images exactly on the 3-bit grid and flat (a fixed point of both squeezers).
const cases: [string, () => Detector, number][] = [
  ['squeeze', () => new FeatureSqueezingDetector({ bits: 3, median: 3 }), 0],
  [
    'magnet',
    () => new MagnetDetector(undefined, { train: { epochs: 30, batchSize: 32, filters: 4 } }),
    0.03,
  ],
  ['mahalanobis', () => new MahalanobisDetector(), 0.03],
  ['lid', () => new LidDetector({ k: 10, referenceSize: 80 }), 0.03],
  ['kde', () => new KdeDetector(), 0.03],
  ['learned', () => new LearnedDetector(), 0.03],
];

describe('detectors on a separable synthetic case', () => {
  for (const [name, make, cleanNoise] of cases) {
    it(`${name}: AUC > 0.99, calibrated FPR, no leaks`, async () => {
      const det = make();
      const [train, test] = [syntheticSet(240, 11, cleanNoise), syntheticSet(100, 12, cleanNoise)];
      await det.fit(model, train.x, train.labels, train.adv);
      const before = tf.memory().numTensors;
      const clean = det.score(test.x);
      const adv = det.score(test.adv);
      const auc = rocAuc(clean, adv);
      expect(auc, `${name} AUC ${auc}`).toBeGreaterThan(0.99);
      const thr = det.calibrate(test.x, 0.05);
      expect(det.threshold).toBe(thr);
      const flagged = det.detect(test.x).filter(Boolean).length;
      // ⌊0.05·100⌋ when scores have no ties; squeezing scores all clean inputs 0 (none flagged).
      expect(flagged).toBe(cleanNoise > 0 ? 5 : 0);
      const s = det.scoreTensor(test.x);
      expect(s.shape).toEqual([100]);
      s.dispose();
      expect(tf.memory().numTensors).toBe(before);
      if (det.gradient !== 'none') {
        // What the joint attack needs: a finite input gradient of the score.
        const g = tf.grad((v: tf.Tensor) => tf.sum(det.scoreTensor(v)))(test.adv);
        const finite = tf.all(tf.isFinite(g));
        expect((await finite.data())[0]).toBe(1);
        tf.dispose([g, finite]);
      }
      det.dispose();
      tf.dispose([train.x, train.adv, train.labels, test.x, test.adv, test.labels]);
    });
  }
});

describe('closed forms', () => {
  it('LID MLE matches the closed form on a hand example', async () => {
    // Neighbours at 1, 2, 4 (k = 3): LID = −1 / mean(log(1/4), log(2/4), log(4/4)) = 3 / ln 8.
    expect(lidMle([4, 1, 2, 8], 3)).toBeCloseTo(3 / Math.log(8), 12);
    // The tensor version: a point at the origin, references on a line at those distances.
    const a = tf.tensor2d([[0, 0]]);
    const r = tf.tensor2d([
      [4, 0],
      [0, 1],
      [-2, 0],
      [0, 8],
    ]);
    const lid = lidTensor(a, r, 3);
    expect((await lid.data())[0]).toBeCloseTo(3 / Math.log(8), 4);
    tf.dispose([a, r, lid]);
  });

  it('LID gradient (selection held fixed) matches finite differences of the float64 MLE', async () => {
    const rng = new Rng(6);
    const d = 5;
    const refs = Array.from({ length: 12 }, () => Array.from({ length: d }, () => rng.normal()));
    const point = Array.from({ length: d }, () => 0.3 * rng.normal());
    const k = 4;
    const mle = (p: number[]) =>
      lidMle(
        refs.map((q) => Math.hypot(...q.map((v, i) => v - p[i]))),
        k,
      );
    const r = tf.tensor2d(refs);
    const a = tf.tensor2d([point]);
    const g = tf.grad((v: tf.Tensor) => tf.sum(lidTensor(v as tf.Tensor2D, r, k)))(a);
    const got = Array.from(await g.data());
    const h = 1e-5;
    for (let i = 0; i < d; i++) {
      const up = [...point];
      const down = [...point];
      up[i] += h;
      down[i] -= h;
      const want = (mle(up) - mle(down)) / (2 * h);
      expect(Math.abs(got[i] - want), `coordinate ${i}`).toBeLessThan(
        2e-3 * Math.max(1, Math.abs(want)),
      );
    }
    expect(got.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    tf.dispose([r, a, g]);
  });

  it('Mahalanobis matches an independent float64 computation (d = 2, closed-form inverse)', async () => {
    const f = [
      [1, 2],
      [2, 1],
      [3, 3],
      [-1, 0],
      [0, -2],
      [-2, -1],
    ];
    const y = [0, 0, 0, 1, 1, 1];
    const g = fitTiedGaussians(Float64Array.from(f.flat()), y, 2, 2, 0);
    // Independent: means, tied covariance (1/n), 2×2 inverse by adjugate.
    const mu = [0, 1].map((c) =>
      [0, 1].map((j) => f.filter((_, i) => y[i] === c).reduce((s, r) => s + r[j], 0) / 3),
    );
    const cov = [0, 0, 0, 0];
    f.forEach((r, i) => {
      const dx = [r[0] - mu[y[i]][0], r[1] - mu[y[i]][1]];
      cov[0] += (dx[0] * dx[0]) / 6;
      cov[1] += (dx[0] * dx[1]) / 6;
      cov[2] += (dx[1] * dx[0]) / 6;
      cov[3] += (dx[1] * dx[1]) / 6;
    });
    const det = cov[0] * cov[3] - cov[1] * cov[2];
    const inv = [cov[3] / det, -cov[1] / det, -cov[2] / det, cov[0] / det];
    for (let k = 0; k < 4; k++) expect(g.precision[k]).toBeCloseTo(inv[k], 10);
    const queries = [
      [0.5, 0.5],
      [4, -3],
      [-1, 1],
    ];
    const expected = queries.map((q) =>
      Math.min(
        ...mu.map((m) => {
          const d = [q[0] - m[0], q[1] - m[1]];
          return d[0] * (inv[0] * d[0] + inv[1] * d[1]) + d[1] * (inv[2] * d[0] + inv[3] * d[1]);
        }),
      ),
    );
    const s = minMahalanobis(
      tf.tensor2d(queries),
      tf.tensor2d(Float32Array.from(g.means), [2, 2]),
      tf.tensor2d(Float32Array.from(g.precision), [2, 2]),
    );
    const got = await s.data();
    for (let i = 0; i < expected.length; i++) expect(got[i]).toBeCloseTo(expected[i], 3);
    s.dispose();
  });

  it('Mahalanobis detector scores equal a float64 recomputation from its own features', async () => {
    const det = new MahalanobisDetector({ ridge: 1e-3 });
    await det.fit(model, train.x, train.labels);
    const fm = featureModel(model);
    const ftrain = readFeatures(fm, train.x, fm.penultimate);
    const ftest = readFeatures(fm, test.adv, fm.penultimate);
    const d = ftrain.length / 240;
    const y = await train.labels.data();
    // Independent float64: means, covariance, Gauss–Jordan solve per class mean.
    const mu = [0, 1].map((c) => {
      const m = new Float64Array(d);
      let n = 0;
      for (let i = 0; i < 240; i++) {
        if (y[i] !== c) continue;
        n++;
        for (let j = 0; j < d; j++) m[j] += ftrain[i * d + j];
      }
      return m.map((v) => v / n);
    });
    const cov = Array.from({ length: d }, () => new Float64Array(d));
    for (let i = 0; i < 240; i++) {
      for (let a = 0; a < d; a++) {
        for (let b = 0; b < d; b++) {
          cov[a][b] +=
            ((ftrain[i * d + a] - mu[y[i]][a]) * (ftrain[i * d + b] - mu[y[i]][b])) / 240;
        }
      }
    }
    const trace = cov.reduce((s, r, a) => s + r[a], 0);
    for (let a = 0; a < d; a++) cov[a][a] += (1e-3 * trace) / d;
    const solve = (v: Float64Array) => {
      const m = cov.map((r, i) => [...r, v[i]]);
      for (let c = 0; c < d; c++) {
        let p = c;
        for (let r = c + 1; r < d; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
        [m[c], m[p]] = [m[p], m[c]];
        for (let r = 0; r < d; r++) {
          if (r === c) continue;
          const k = m[r][c] / m[c][c];
          for (let j = c; j <= d; j++) m[r][j] -= k * m[c][j];
        }
      }
      return m.map((r, i) => r[d] / r[i]);
    };
    const scores = det.score(test.adv);
    for (let i = 0; i < 10; i++) {
      const dist = mu.map((m) => {
        const diff = Float64Array.from({ length: d }, (_, j) => ftest[i * d + j] - m[j]);
        const sol = solve(diff);
        return diff.reduce((s, v, j) => s + v * sol[j], 0);
      });
      const want = Math.min(...dist);
      expect(Math.abs(scores[i] - want) / Math.max(1, want)).toBeLessThan(1e-3);
    }
    det.dispose();
  });

  it('feature squeezing scores 0 on inputs already at the squeezed bit depth', async () => {
    const det = new FeatureSqueezingDetector({ bits: 3, median: null });
    await det.fit(model);
    // Any values on the 3-bit grid k/7: bit-depth reduction is the identity on them.
    const grid = tf.tensor(
      Array.from({ length: 8 * 16 }, (_, i) => ((i * 5) % 8) / 7),
      [8, ...SHAPE],
    );
    expect(Array.from(det.score(grid))).toEqual(new Array(8).fill(0));
    // With the median too: flat images on the grid are fixed points of both squeezers.
    const both = new FeatureSqueezingDetector({ bits: 3, median: 2 });
    await both.fit(model);
    const flat = tf.tensor(
      Array.from({ length: 8 * 16 }, (_, i) => Math.floor(i / 16) / 7),
      [8, ...SHAPE],
    );
    expect(Array.from(both.score(flat))).toEqual(new Array(8).fill(0));
    tf.dispose([grid, flat]);
  });

  it('median filter and bit depth follow scipy.ndimage / Xu et al. semantics', async () => {
    // Independent: scipy's median_filter = rank filter of rank ⌊size²/2⌋ (ascending), mode
    // 'reflect' (d c b a | a b c d | d c b a), window offsets [−⌊size/2⌋, size − 1 − ⌊size/2⌋].
    const h = 4;
    const w = 5;
    const img = Array.from({ length: h * w }, (_, i) => ((i * 7) % 11) / 10);
    const reflect = (i: number, n: number) => (i < 0 ? -i - 1 : i >= n ? 2 * n - i - 1 : i);
    for (const size of [2, 3, 4, 5]) {
      const want: number[] = [];
      const lo = Math.floor(size / 2);
      for (let r = 0; r < h; r++) {
        for (let c = 0; c < w; c++) {
          const win: number[] = [];
          for (let i = -lo; i < size - lo; i++) {
            for (let j = -lo; j < size - lo; j++)
              win.push(img[reflect(r + i, h) * w + reflect(c + j, w)]);
          }
          win.sort((a, b) => a - b);
          want.push(win[Math.floor((size * size) / 2)]);
        }
      }
      const x = tf.tensor4d(img, [1, h, w, 1]);
      const m = medianFilter(x, size);
      const got = Array.from(await m.data());
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 6);
      tf.dispose([x, m]);
    }
    const x = tf.tensor1d([0, 0.1, 0.2, 0.5, 0.99, 1]);
    const q = bitDepth(x, 1, [0, 1]);
    // Half to even at 0.5, as np.rint in Xu et al.'s reference code.
    expect(Array.from(await q.data())).toEqual([0, 0, 0, 0, 1, 1]);
    tf.dispose([x, q]);
  });

  it('MagNet JSD: 0 for equal distributions, ln 2 for disjoint ones', async () => {
    const p = tf.tensor2d([
      [1, 0],
      [0.3, 0.7],
    ]);
    const q = tf.tensor2d([
      [0, 1],
      [0.3, 0.7],
    ]);
    const d = jsd(p, q);
    const got = await d.data();
    expect(got[0]).toBeCloseTo(Math.LN2, 5);
    expect(got[1]).toBeCloseTo(0, 6);
    tf.dispose([p, q, d]);
  });

  it('KDE: uncertainty is 0 without dropout and positive with MC dropout', async () => {
    const det = new KdeDetector();
    await det.fit(model, train.x, train.labels, train.adv);
    const f = det.kdeFeatures(test.x);
    const u = Array.from(await tf.slice(f, [0, 1], [-1, 1]).data());
    expect(u.every((v) => v === 0)).toBe(true);
    const dropModel = tinyModel(5, true);
    await trainTiny(dropModel, train.x, train.labels);
    const det2 = new KdeDetector({ mcSamples: 8 });
    await det2.fit(dropModel, train.x, train.labels, train.adv);
    const f2 = det2.kdeFeatures(test.adv);
    const u2 = Array.from(await tf.slice(f2, [0, 1], [-1, 1]).data());
    expect(u2.some((v) => v > 0)).toBe(true);
    // MC-dropout masks come from the detector's seed: scoring again gives the same features.
    const f3 = det2.kdeFeatures(test.adv);
    expect(Array.from(await f3.data())).toEqual(Array.from(await f2.data()));
    tf.dispose([f, f2, f3]);
    det.dispose();
    det2.dispose();
  });

  it('fit checks its inputs', async () => {
    await expect(new LearnedDetector().fit(model, train.x)).rejects.toThrow(/advX: call fit/);
    expect(() => new MahalanobisDetector().scoreTensor(test.x)).toThrow(/call fit\(\) first/);
  });
});
