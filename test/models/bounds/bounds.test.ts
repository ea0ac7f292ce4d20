/**
 * IBP and CROWN beyond sampled soundness (bounds-soundness.test.ts): exactness on one affine
 * layer, the tight margin, tightness on the committed reference models, errors and leaks.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certifyCrown,
  certifyDataset,
  certifyIbp,
  crownBounds,
  crownMarginBounds,
  ibpBounds,
  ibpMarginBounds,
} from '../../../src/certify/index.js';
import { loadDataset, syntheticDataset, takeFirst } from '../../../src/data/index.js';
import { packageRoot } from '../../../src/engine/paths.js';
import { ParryError } from '../../../src/errors.js';
import { loadClassifier, saveLayersModel, type TfjsClassifier } from '../../../src/models/index.js';
import { values } from '../../attacks/helpers.js';
import { seeded, seededClassifier } from './helpers.js';

const L = tfl.layers;

/** A, b of an affine model f(x) = A·x + b, read off f at 0 and at the unit vectors. */
function affineMap(model: TfjsClassifier): { a: number[][]; b: number[] } {
  const d = model.inputShape.reduce((p, q) => p * q, 1);
  const out = tf.tidy(() => {
    const basis = tf.concat([tf.zeros([1, d]), tf.eye(d)]);
    return model.logits(tf.reshape(basis, [d + 1, ...model.inputShape]));
  });
  const rows = out.arraySync() as number[][];
  out.dispose();
  const b = rows[0];
  return { a: rows.slice(1).map((r) => r.map((v, j) => v - b[j])), b };
}

/** f at the box corner that minimises c·f: x_i = lo_i where (A·c)_i > 0, else hi_i. */
function minimum(map: { a: number[][]; b: number[] }, c: number[], lo: number[], hi: number[]) {
  const dot = (v: number[]) => v.reduce((s, vj, j) => s + vj * c[j], 0);
  return lo.reduce((s, l, i) => s + dot(map.a[i]) * (dot(map.a[i]) > 0 ? l : hi[i]), dot(map.b));
}

describe('bounds on one affine layer', () => {
  // [name, model, whether IBP's margin is exact: the tight margin needs a final Dense layer]
  const cases: [string, () => TfjsClassifier, boolean][] = [
    [
      'Dense',
      () => seededClassifier([L.flatten({ inputShape: [3, 4, 2] }), L.dense({ units: 4 })], 21),
      true,
    ],
    [
      'Conv2D after normalisation',
      () =>
        seededClassifier(
          [L.conv2d({ inputShape: [3, 4, 2], filters: 2, kernelSize: 2, strides: 2 }), L.flatten()],
          22,
          { mean: [0.5, 0.2], std: [0.25, 2] },
        ),
      false,
    ],
  ];
  it.each(cases)(
    '%s: IBP and CROWN bounds and margins are attained at box corners',
    (_, build, ibpMarginExact) => {
      const model = build();
      const d = model.inputShape.reduce((p, q) => p * q, 1);
      const k = model.numClasses;
      const xs = values(2 * d, 23, 0, 1);
      const x = tf.tensor(xs, [2, ...model.inputShape]);
      const labels = tf.tensor1d([0, k - 1], 'int32');
      const eps = 0.15;
      const map = affineMap(model);
      const unit = (j: number, sign: number) =>
        Array.from({ length: k }, (_, i) => (i === j ? sign : 0));
      for (const [bounds, marginExact] of [
        [ibpMarginBounds(model, x, labels, eps), ibpMarginExact],
        [crownMarginBounds(model, x, labels, eps), true],
      ] as const) {
        const [lower, upper, margin] = [bounds.lower, bounds.upper, bounds.marginLower].map(
          (t) => t.arraySync() as number[][],
        );
        for (let e = 0; e < 2; e++) {
          const ex = xs.slice(e * d, (e + 1) * d);
          const lo = ex.map((v) => Math.max(v - eps, 0));
          const hi = ex.map((v) => Math.min(v + eps, 1));
          const y = e === 0 ? 0 : k - 1;
          for (let j = 0; j < k; j++) {
            expect(lower[e][j]).toBeCloseTo(minimum(map, unit(j, 1), lo, hi), 4);
            expect(upper[e][j]).toBeCloseTo(-minimum(map, unit(j, -1), lo, hi), 4);
            const spec = unit(y, 1).map((v, i) => v - unit(j, 1)[i]);
            const exact = j === y ? 0 : minimum(map, spec, lo, hi);
            if (marginExact) expect(margin[e][j]).toBeCloseTo(exact, 4);
            else expect(margin[e][j]).toBeLessThanOrEqual(exact + 1e-5);
          }
          // The tight margin beats lower_y − upper_j wherever the two classes share inputs.
          const naive = upper[e].map((u) => lower[e][y] - u);
          const beats = margin[e].some((m, j) => j !== y && m > naive[j] + 1e-3);
          expect(beats).toBe(marginExact);
        }
        tf.dispose([bounds.lower, bounds.upper, bounds.marginLower]);
      }
      tf.dispose([x, labels]);
      model.dispose();
    },
  );
});

describe('CROWN on the reference models (eps 0.01, first test images)', () => {
  const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 5);
  const cases: [string, number, number][] = [
    ['fmnist-mlp', 5, 0.9],
    ['fmnist-cnn-small', 2, 0.9],
  ];
  it.each(cases)(
    '%s: strictly tighter than IBP on most logit bounds',
    async (name, n, fraction) => {
      const model = await loadClassifier(join(packageRoot(), 'models', name));
      const per = data.x.length / data.shape[0];
      const x = tf.tensor(data.x.subarray(0, n * per), [n, ...data.shape.slice(1)]);
      const labels = tf.tensor1d(data.labels.subarray(0, n), 'int32');
      const ibp = await certifyIbp(model, x, labels, 0.01);
      const crown = await certifyCrown(model, x, labels, 0.01);
      const width = (b: { lower: tf.Tensor; upper: tf.Tensor }) =>
        Array.from(tf.tidy(() => tf.sub(b.upper, b.lower)).dataSync());
      const [wIbp, wCrown] = [width(ibp), width(crown)];
      const tighter = wCrown.filter((w, i) => w < wIbp[i] * (1 - 1e-4)).length / wCrown.length;
      expect(tighter).toBeGreaterThanOrEqual(fraction);
      expect(wCrown.every((w, i) => w <= wIbp[i])).toBe(true);
      const certified = (r: { certified: boolean[] }) => r.certified.filter(Boolean).length;
      expect(certified(crown)).toBeGreaterThanOrEqual(certified(ibp));
      tf.dispose([x, labels, ibp.lower, ibp.upper, ibp.marginLower]);
      tf.dispose([crown.lower, crown.upper, crown.marginLower]);
      model.dispose();
    },
  );
});

describe('a model stored with a final softmax', () => {
  it('is bounded on its logits (the loader replaces the softmax by linear)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parry-bounds-'));
    const layers = [
      L.flatten({ inputShape: [3, 3, 1] }),
      L.dense({ units: 5, activation: 'relu' }),
      L.dense({ units: 3, activation: 'softmax' }),
    ];
    const original = seededClassifier(layers, 36);
    await saveLayersModel(original.layersModel!, dir);
    original.dispose();
    const model = await loadClassifier(dir);
    expect(model.outputWasSoftmax).toBe(true);
    const x = tf.tensor(values(18, 37), [2, 3, 3, 1]);
    const z = model.logits(x);
    for (const b of [ibpBounds(model, x, 0), crownBounds(model, x, 0)]) {
      const gap = (t: tf.Tensor) => tf.max(tf.abs(tf.sub(t, z)));
      const diff = tf.tidy(() => tf.maximum(gap(b.lower), gap(b.upper)).dataSync()[0]);
      expect(diff).toBeLessThan(1e-5);
      tf.dispose([b.lower, b.upper]);
    }
    tf.dispose([x, z]);
    model.dispose();
  });
});

describe('errors', () => {
  const expectUnsupported = (model: TfjsClassifier, pattern: RegExp) => {
    const x = tf.zeros([1, ...model.inputShape]);
    const before = tf.memory().numTensors;
    for (const f of [() => ibpBounds(model, x, 0.1), () => crownBounds(model, x, 0.1)]) {
      let error: unknown;
      try {
        f();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ParryError);
      expect((error as ParryError).code).toBe('UNSUPPORTED');
      expect((error as ParryError).message).toMatch(pattern);
    }
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  };

  it('an unsupported layer is named by class and name', () => {
    expectUnsupported(
      seededClassifier(
        [L.conv1d({ inputShape: [8, 2], filters: 2, kernelSize: 3, name: 'c1d' }), L.flatten()],
        31,
      ),
      /Conv1D layer 'c1d'/,
    );
  });

  it('a non-monotone activation is unsupported', () => {
    expectUnsupported(
      seededClassifier(
        [L.dense({ inputShape: [4], units: 3, activation: 'swish', name: 'd' })],
        32,
      ),
      /Dense layer 'd'.*swish/,
    );
  });

  it('a softmax inside the model is unsupported (the loader replaces a final one)', () => {
    expectUnsupported(
      seededClassifier(
        [L.dense({ inputShape: [4], units: 3, activation: 'softmax', name: 'p' })],
        33,
      ),
      /Dense layer 'p'.*softmax/,
    );
  });

  it('a branching model is unsupported', () => {
    const input = tfl.input({ shape: [4] });
    const a = L.dense({ units: 3 }).apply(input) as tfl.SymbolicTensor;
    const b = L.dense({ units: 3 }).apply(input) as tfl.SymbolicTensor;
    const sum = L.add({ name: 'merge' }).apply([a, b]) as tfl.SymbolicTensor;
    expectUnsupported(
      seeded(tfl.model({ inputs: input, outputs: sum }), 34),
      /Add layer 'merge'.*branching/,
    );
  });

  it('bad eps, shapes, labels and config are rejected', () => {
    const model = seededClassifier([L.dense({ inputShape: [4], units: 3 })], 35);
    const x = tf.zeros([2, 4]);
    const labels = tf.tensor1d([0, 1], 'int32');
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return `${(e as ParryError).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(code(() => ibpBounds(model, x, -0.1))).toMatch(/BAD_OPTION: ibpBounds: eps/);
    expect(code(() => crownBounds(model, x, Number.NaN))).toMatch(/BAD_OPTION: crownBounds: eps/);
    expect(code(() => ibpBounds(model, tf.zeros([2, 5]), 0.1))).toMatch(/BAD_INPUT/);
    expect(code(() => crownMarginBounds(model, x, tf.tensor1d([0], 'int32'), 0.1))).toMatch(
      /BAD_INPUT: crownMarginBounds: labels/,
    );
    const typo = { intermediates: 'ibp' } as unknown as Parameters<typeof crownBounds>[3];
    expect(code(() => crownBounds(model, x, 0.1, typo))).toMatch(/BAD_OPTION: crownBounds/);
    tf.dispose([x, labels]);
    model.dispose();
  });
});

describe('tensor hygiene', () => {
  let model: TfjsClassifier;
  let x: tf.Tensor;
  let labels: tf.Tensor1D;
  beforeAll(() => {
    model = seededClassifier(
      [
        L.conv2d({ inputShape: [6, 6, 1], filters: 2, kernelSize: 3, activation: 'relu' }),
        L.maxPooling2d({ poolSize: 2 }),
        L.flatten(),
        L.dense({ units: 5, activation: 'relu' }),
        L.dense({ units: 3 }),
      ],
      41,
      { mean: [0.5], std: [0.5] },
    );
    x = tf.tensor(values(3 * 36, 42), [3, 6, 6, 1]);
    labels = tf.tensor1d([0, 1, 2], 'int32');
  });
  afterAll(() => {
    tf.dispose([x, labels]);
    model.dispose();
  });

  it('leaks no tensors; the caller owns exactly the returned ones', async () => {
    const before = tf.memory().numTensors;
    const runs: (() => Promise<object> | object)[] = [
      () => ibpBounds(model, x, 0.05),
      () => ibpMarginBounds(model, x, labels, 0.05),
      () => crownBounds(model, x, 0.05),
      () => crownMarginBounds(model, x, labels, 0.05, { memoryBudget: 1 }),
      () => certifyIbp(model, x, labels, 0.05),
      () => certifyCrown(model, x, labels, 0.05),
    ];
    for (const run of runs) {
      const out = await run();
      const tensors = Object.values(out).filter((v) => v instanceof tf.Tensor) as tf.Tensor[];
      expect(tf.memory().numTensors).toBe(before + tensors.length);
      tf.dispose(tensors);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('certifyDataset leaks no tensors and agrees with certifyIbp / certifyCrown', async () => {
    const data = syntheticDataset({ shape: [6, 6, 1], numClasses: 3, n: 7, seed: 43 });
    const x7 = tf.tensor(data.x, data.shape);
    const y7 = tf.tensor1d(data.labels, 'int32');
    const direct = await certifyCrown(model, x7, y7, 0.02);
    const before = tf.memory().numTensors;
    const r = await certifyDataset(model, data, { method: 'crown', eps: 0.02, batchSize: 3 });
    expect(tf.memory().numTensors).toBe(before);
    expect(r.certified).toEqual(direct.certified);
    for (const [i, m] of r.minMargin.entries()) expect(m).toBeCloseTo(direct.minMargin[i], 4);
    expect(r.ibpCertified).toHaveLength(7);
    tf.dispose([x7, y7, direct.lower, direct.upper, direct.marginLower]);
  });

  it('chunked CROWN equals one chunk', () => {
    const one = crownMarginBounds(model, x, labels, 0.05);
    const many = crownMarginBounds(model, x, labels, 0.05, { memoryBudget: 1 });
    for (const key of ['lower', 'upper', 'marginLower'] as const) {
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(one[key], many[key]))).dataSync()[0]);
      expect(diff).toBeLessThan(1e-5);
    }
    tf.dispose([one.lower, one.upper, one.marginLower, many.lower, many.upper, many.marginLower]);
  });
});
