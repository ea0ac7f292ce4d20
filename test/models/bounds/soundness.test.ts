/**
 * Soundness of IBP and CROWN (STYLE.md, tests layer 4): on small seeded networks of every
 * supported layer type, 10,000 points sampled in the boxes (random corners and uniform points)
 * never leave the certified logit bounds or margin bounds (1e-5 relative float slack).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  certifyCrown,
  certifyIbp,
  crownMarginBounds,
  ibpMarginBounds,
} from '../../../src/certify/index.js';
import { crownLower, logitSpec } from '../../../src/models/bounds/crown.js';
import { inputBox } from '../../../src/models/bounds/interval.js';
import { buildNetwork } from '../../../src/models/bounds/layers.js';
import type { TfjsClassifier } from '../../../src/models/index.js';
import { values } from '../../attacks/helpers.js';
import { sampleBox, seeded, seededClassifier } from './helpers.js';

const L = tfl.layers;
const BATCH = 4;
const PER_EXAMPLE = 2500;

interface Case {
  name: string;
  build: () => TfjsClassifier;
}

const img = [6, 6, 2];
const head = (k = 3) => [L.flatten({ name: 'flat' }), L.dense({ units: k, name: 'out' })];

const CASES: Case[] = [
  {
    name: 'dense relu',
    build: () =>
      seededClassifier(
        [
          L.flatten({ inputShape: img }),
          L.dense({ units: 12, activation: 'relu' }),
          L.dense({ units: 10, activation: 'relu' }),
          L.dense({ units: 4 }),
        ],
        1,
      ),
  },
  {
    name: 'conv stride 1 valid',
    build: () =>
      seededClassifier(
        [L.conv2d({ inputShape: img, filters: 4, kernelSize: 3, activation: 'relu' }), ...head()],
        2,
      ),
  },
  {
    name: 'conv stride 2 same, then stride 1 same',
    build: () =>
      seededClassifier(
        [
          L.conv2d({
            inputShape: [7, 7, 2],
            filters: 3,
            kernelSize: 3,
            strides: 2,
            padding: 'same',
            activation: 'relu',
          }),
          L.conv2d({ filters: 4, kernelSize: 2, padding: 'same', activation: 'relu' }),
          ...head(),
        ],
        3,
      ),
  },
  {
    name: 'conv stride 2 valid, dilated conv same and valid',
    build: () =>
      seededClassifier(
        [
          L.conv2d({ inputShape: [9, 9, 1], filters: 3, kernelSize: 3, strides: 2 }),
          L.reLU(),
          L.conv2d({
            filters: 3,
            kernelSize: 2,
            dilationRate: 2,
            padding: 'same',
            activation: 'relu',
          }),
          L.conv2d({ filters: 3, kernelSize: 2, dilationRate: 2, activation: 'relu' }),
          ...head(),
        ],
        4,
      ),
  },
  {
    name: 'maxpool (2 valid, 3 stride 2 same)',
    build: () =>
      seededClassifier(
        [
          L.conv2d({ inputShape: [9, 9, 1], filters: 3, kernelSize: 2, activation: 'relu' }),
          L.maxPooling2d({ poolSize: 2 }),
          L.conv2d({ filters: 3, kernelSize: 1 }),
          L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
          ...head(),
        ],
        5,
      ),
  },
  {
    name: 'avgpool (2 valid, 3 stride 2 same), global average pooling',
    build: () =>
      seededClassifier(
        [
          L.conv2d({ inputShape: [9, 9, 1], filters: 3, kernelSize: 2, activation: 'relu' }),
          L.averagePooling2d({ poolSize: 2 }),
          L.conv2d({ filters: 3, kernelSize: 1, activation: 'relu' }),
          L.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }),
          L.globalAveragePooling2d({}),
          L.dense({ units: 3 }),
        ],
        6,
      ),
  },
  {
    name: 'batch normalization with moving statistics, dropout',
    build: () =>
      seededClassifier(
        [
          L.conv2d({ inputShape: img, filters: 3, kernelSize: 3 }),
          L.batchNormalization({}),
          L.activation({ activation: 'relu' }),
          L.flatten(),
          L.dropout({ rate: 0.5 }),
          L.dense({ units: 8 }),
          L.batchNormalization({}),
          L.activation({ activation: 'relu' }),
          L.dense({ units: 3 }),
        ],
        7,
      ),
  },
  {
    name: 'sigmoid, tanh',
    build: () =>
      seededClassifier(
        [
          L.flatten({ inputShape: img }),
          L.dense({ units: 10, activation: 'sigmoid' }),
          L.dense({ units: 10, activation: 'tanh' }),
          L.dense({ units: 3 }),
        ],
        8,
      ),
  },
  {
    name: 'elu, softplus, softsign, leaky relu, relu6, selu, hard sigmoid',
    build: () =>
      seededClassifier(
        [
          L.flatten({ inputShape: img }),
          L.dense({ units: 8, activation: 'elu' }),
          L.dense({ units: 8, activation: 'softplus' }),
          L.dense({ units: 8, activation: 'softsign' }),
          L.dense({ units: 8 }),
          L.leakyReLU({ alpha: 0.2 }),
          L.dense({ units: 8, activation: 'relu6' }),
          L.dense({ units: 8, activation: 'selu' }),
          L.dense({ units: 8, activation: 'hardSigmoid' }),
          L.dense({ units: 3 }),
        ],
        9,
      ),
  },
  {
    name: 'input normalisation (mean/std), bounds [-1, 2]',
    build: () =>
      seededClassifier(
        [L.conv2d({ inputShape: img, filters: 3, kernelSize: 3, activation: 'relu' }), ...head()],
        10,
        { mean: [0.4, 0.6], std: [0.3, 0.5], bounds: [-1, 2] },
      ),
  },
  {
    name: 'functional chain with a nested Sequential',
    build: () => {
      const input = tfl.input({ shape: img });
      const inner = tfl.sequential({
        layers: [
          L.dense({ inputShape: [72], units: 6, activation: 'relu' }),
          L.dense({ units: 5 }),
        ],
      });
      const hidden = L.dense({ units: 3 }).apply(
        inner.apply(L.flatten().apply(input) as tfl.SymbolicTensor),
      ) as tfl.SymbolicTensor;
      return seeded(tfl.model({ inputs: input, outputs: hidden }), 11);
    },
  },
];

/** Max violation of lower ≤ v ≤ upper with slack 1e-5·(1 + |v|) (> 0 means unsound). */
function violation(v: number, lower: number, upper: number): number {
  const slack = 1e-5 * (1 + Math.abs(v));
  return Math.max(lower - slack - v, v - upper - slack, 0);
}

interface Bounds {
  lower: number[];
  upper: number[];
  margin: number[];
}

/** Worst violation of `b` by the sampled logits. */
function worst(b: Bounds, logits: number[], labels: number[], k: number): number {
  let w = 0;
  for (let s = 0; s < logits.length / k; s++) {
    const e = Math.floor(s / PER_EXAMPLE);
    const z = logits.slice(s * k, (s + 1) * k);
    for (let j = 0; j < k; j++) {
      w = Math.max(w, violation(z[j], b.lower[e * k + j], b.upper[e * k + j]));
      const m = z[labels[e]] - z[j];
      w = Math.max(w, violation(m, b.margin[e * k + j], Number.POSITIVE_INFINITY));
    }
  }
  return w;
}

/** Raw CROWN bounds, not intersected with IBP's. */
function crownAlone(model: TfjsClassifier, x: tf.Tensor, labels: tf.Tensor1D, eps: number): Bounds {
  const k = model.numClasses;
  const out = tf.tidy(() => {
    const net = buildNetwork(model, 'test');
    const spec = logitSpec(x.shape[0], k, labels);
    return crownLower(net, inputBox(x, eps, model.bounds), spec, {
      intermediate: 'crown',
      maxIntermediateNeurons: 1024,
      memoryBudget: 2 ** 25,
    }).lower;
  });
  const all = Array.from(out.dataSync());
  out.dispose();
  const pick = (part: number, sign: number) =>
    Array.from({ length: BATCH * k }, (_, i) => {
      const e = Math.floor(i / k);
      return sign * all[e * 3 * k + part * k + (i % k)];
    });
  return { lower: pick(0, 1), upper: pick(1, -1), margin: pick(2, 1) };
}

function testInput(model: TfjsClassifier) {
  const n = model.inputShape.reduce((a, b) => a * b, 1);
  const [lo, hi] = model.bounds;
  const x = tf.tensor(values(BATCH * n, 11, lo, hi), [BATCH, ...model.inputShape]);
  const labelList = Array.from({ length: BATCH }, (_, i) => i % model.numClasses);
  return { x, labels: tf.tensor1d(labelList, 'int32'), labelList };
}

function read(b: { lower: tf.Tensor; upper: tf.Tensor; marginLower: tf.Tensor }): Bounds {
  const out = {
    lower: Array.from(b.lower.dataSync()),
    upper: Array.from(b.upper.dataSync()),
    margin: Array.from(b.marginLower.dataSync()),
  };
  tf.dispose([b.lower, b.upper, b.marginLower]);
  return out;
}

describe.each(CASES)('bounds of $name', ({ build }) => {
  it.each([0.1, 0.01])('contain 10,000 sampled points at eps %s (IBP, CROWN, CROWN-IBP)', (eps) => {
    const model = build();
    const k = model.numClasses;
    const { x, labels, labelList } = testInput(model);
    const box = inputBox(x, eps, model.bounds);
    const samples = sampleBox(box.lower, box.upper, PER_EXAMPLE, 12);
    const zs = model.logits(samples);
    const logits = Array.from(zs.dataSync());
    const ibp = read(ibpMarginBounds(model, x, labels, eps));
    const crown = read(crownMarginBounds(model, x, labels, eps));
    const crownIbp = read(crownMarginBounds(model, x, labels, eps, { intermediate: 'ibp' }));
    const alone = crownAlone(model, x, labels, eps);
    expect(worst(ibp, logits, labelList, k)).toBe(0);
    expect(worst(alone, logits, labelList, k)).toBe(0);
    expect(worst(crown, logits, labelList, k)).toBe(0);
    expect(worst(crownIbp, logits, labelList, k)).toBe(0);
    // The reported CROWN bounds are never looser than IBP's.
    for (let i = 0; i < BATCH * k; i++) {
      expect(crown.lower[i]).toBeGreaterThanOrEqual(ibp.lower[i]);
      expect(crown.upper[i]).toBeLessThanOrEqual(ibp.upper[i]);
      expect(crown.margin[i]).toBeGreaterThanOrEqual(ibp.margin[i]);
    }
    tf.dispose([x, labels, box.lower, box.upper, samples, zs]);
    model.dispose();
  });

  it('are the logits at eps 0, and certify exactly the correctly classified examples', async () => {
    const model = build();
    const k = model.numClasses;
    const { x, labels, labelList } = testInput(model);
    const z = model.logits(x);
    const logits = Array.from(z.dataSync());
    const predicted = Array.from(tf.argMax(z, 1).dataSync());
    for (const certify of [certifyIbp, certifyCrown]) {
      const r = await certify(model, x, labels, 0);
      const alone = crownAlone(model, x, labels, 0);
      for (const b of [read(r), alone]) {
        for (let i = 0; i < BATCH * k; i++) {
          expect(b.lower[i]).toBeCloseTo(logits[i], 4);
          expect(b.upper[i]).toBeCloseTo(logits[i], 4);
        }
      }
      expect(r.certified).toEqual(predicted.map((p, i) => p === labelList[i]));
    }
    tf.dispose([x, labels, z]);
    model.dispose();
  });
});
