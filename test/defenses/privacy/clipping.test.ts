/**
 * Per-example clipping: the fast path equals the batch-of-one reference (to 1e-5) on a small MLP
 * and on conv nets (strided, 'same'-padded); both equal a closed-form float64 computation on a
 * softmax regression; a huge example contributes at most C; BatchNormalization is refused; the
 * plan names the layers of each path; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  type ClippedSum,
  clippedGradientSum,
  clippingPlan,
  createDpSgd,
} from '../../../src/defenses/privacy/index.js';
import { ParryError } from '../../../src/errors.js';
import { buildArchitecture } from '../../../src/models/index.js';

const init = (seed: number) => tfl.initializers.glorotUniform({ seed });

function batch(shape: number[], m: number, seed: number) {
  const x = tf.randomUniform([m, ...shape], 0, 1, 'float32', seed);
  const y = tf.tensor1d(
    Array.from({ length: m }, (_, i) => i % 3),
    'int32',
  );
  return { x, y };
}

const release = (r: ClippedSum) =>
  tf.dispose([...Object.values(r.sums), r.norms, r.lossSum, r.correct]);

/** Largest |a − b| over the sums, and relative to max(1, |b|) over the norms (float32 ulps). */
function maxDifference(a: ClippedSum, b: ClippedSum): number {
  let d = tf
    .max(tf.div(tf.abs(tf.sub(a.norms, b.norms)), tf.maximum(tf.abs(b.norms), 1)))
    .dataSync()[0];
  for (const k of Object.keys(b.sums)) {
    d = Math.max(d, tf.max(tf.abs(tf.sub(a.sums[k], b.sums[k]))).dataSync()[0]);
  }
  return d;
}

/** Strided and 'same'-padded convolutions, a bias-free one, tanh: the conv rule's corners. */
function stridedConvNet(): tfl.Sequential {
  return tfl.sequential({
    layers: [
      tfl.layers.conv2d({
        inputShape: [11, 10, 2],
        filters: 3,
        kernelSize: [3, 2],
        strides: 2,
        padding: 'same',
        activation: 'tanh',
        kernelInitializer: init(1),
      }),
      tfl.layers.conv2d({ filters: 4, kernelSize: 2, useBias: false, kernelInitializer: init(2) }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 3, kernelInitializer: init(3) }),
    ],
  });
}

describe('clippedGradientSum', () => {
  it('the fast path equals the batch-of-one reference to 1e-5 (MLP and conv nets)', () => {
    const cases: [string, tfl.LayersModel, number[]][] = [
      [
        'mlp',
        buildArchitecture('mlp', { inputShape: [6, 6, 1], numClasses: 3, seed: 1 }),
        [6, 6, 1],
      ],
      [
        'cnn-tiny',
        buildArchitecture('cnn-tiny', { inputShape: [12, 12, 1], numClasses: 3, seed: 2 }),
        [12, 12, 1],
      ],
      [
        'cnn-cifar',
        buildArchitecture('cnn-cifar', { inputShape: [16, 16, 3], numClasses: 3, seed: 3 }),
        [16, 16, 3],
      ],
      ['strided', stridedConvNet(), [11, 10, 2]],
    ];
    for (const [name, model, shape] of cases) {
      expect(clippingPlan(model).path, name).toBe('fast');
      const { x, y } = batch(shape, 7, 5);
      // C small enough to clip every example, and large enough to clip none.
      for (const maxGradNorm of [0.05, 1e6]) {
        const fast = clippedGradientSum(model, x, y, { maxGradNorm, clipping: 'fast' });
        const ref = clippedGradientSum(model, x, y, { maxGradNorm, clipping: 'reference' });
        expect(maxDifference(fast, ref), `${name}, C ${maxGradNorm}`).toBeLessThan(1e-5);
        expect(fast.lossSum.dataSync()[0]).toBeCloseTo(ref.lossSum.dataSync()[0], 4);
        expect(fast.correct.dataSync()[0]).toBe(ref.correct.dataSync()[0]);
        release(fast);
        release(ref);
      }
      tf.dispose([x, y]);
      model.dispose();
    }
  });

  it('both paths equal per-example gradients of softmax regression computed in float64', () => {
    // One Dense layer: ∇_W L_i = x_i (p_i − e_yi)ᵀ, ∇_b L_i = p_i − e_yi, p_i = softmax(Wᵀx_i + b).
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({
          inputShape: [5],
          units: 3,
          biasInitializer: 'glorotUniform',
          kernelInitializer: init(4),
        }),
      ],
    });
    const W = Array.from(model.getWeights()[0].dataSync());
    const b = Array.from(model.getWeights()[1].dataSync());
    const m = 6;
    const xs = Array.from({ length: m * 5 }, (_, i) => Math.sin(1.3 * i) * (i % 6 === 0 ? 3 : 1));
    const ys = Array.from({ length: m }, (_, i) => (2 * i) % 3);
    const C = 0.7;
    const sumW = new Float64Array(15);
    const sumB = new Float64Array(3);
    const norms: number[] = [];
    for (let i = 0; i < m; i++) {
      const xi = xs.slice(i * 5, i * 5 + 5);
      const z = [0, 1, 2].map((k) => b[k] + xi.reduce((s, v, d) => s + v * W[d * 3 + k], 0));
      const top = Math.max(...z);
      const e = z.map((v) => Math.exp(v - top));
      const g = e.map((v, k) => v / e.reduce((s, u) => s + u, 0) - (k === ys[i] ? 1 : 0));
      const g2 = g.reduce((s, v) => s + v * v, 0);
      const x2 = xi.reduce((s, v) => s + v * v, 0);
      const norm = Math.sqrt(x2 * g2 + g2);
      norms.push(norm);
      const f = Math.min(1, C / norm);
      for (let d = 0; d < 5; d++) for (let k = 0; k < 3; k++) sumW[d * 3 + k] += f * xi[d] * g[k];
      for (let k = 0; k < 3; k++) sumB[k] += f * g[k];
    }
    const x = tf.tensor2d(xs, [m, 5]);
    const y = tf.tensor1d(ys, 'int32');
    const [kernel, bias] = model.trainableWeights.map((w) => (w.read() as tf.Variable).name);
    for (const clipping of ['fast', 'reference'] as const) {
      const r = clippedGradientSum(model, x, y, { maxGradNorm: C, clipping });
      const got = r.norms.dataSync();
      for (const [i, n] of norms.entries()) expect(Math.abs(got[i] - n) / n).toBeLessThan(1e-5);
      const kw = r.sums[kernel].dataSync();
      const bw = r.sums[bias].dataSync();
      for (const [j, v] of sumW.entries()) expect(Math.abs(kw[j] - v)).toBeLessThan(1e-5);
      for (const [j, v] of sumB.entries()) expect(Math.abs(bw[j] - v)).toBeLessThan(1e-5);
      release(r);
    }
    tf.dispose([x, y]);
    model.dispose();
  });

  it('bounds each example: a huge gradient contributes norm <= C, and only its own share shrinks', () => {
    const model = buildArchitecture('mlp', { inputShape: [6, 6, 1], numClasses: 3, seed: 7 });
    const { x: base, y: labels } = batch([6, 6, 1], 4, 8);
    // Example 0 scaled by 100 and labelled with its least likely class: its gradient norm is
    // orders of magnitude above C (a saturated correct prediction would have none).
    const x = tf.mul(base, tf.tensor4d([100, 1, 1, 1], [4, 1, 1, 1]));
    const worst = tf.argMin(model.predict(tf.slice(x, 0, 1)) as tf.Tensor2D, 1).dataSync()[0];
    const y = tf.concat([tf.tensor1d([worst], 'int32'), tf.slice(labels, 1, 3)]) as tf.Tensor1D;
    const C = 0.1;
    const norm = (r: ClippedSum) =>
      Math.sqrt(Object.values(r.sums).reduce((s, t) => s + tf.sum(tf.square(t)).dataSync()[0], 0));
    for (const clipping of ['fast', 'reference'] as const) {
      const all = clippedGradientSum(model, x, y, { maxGradNorm: C, clipping });
      expect(all.norms.dataSync()[0]).toBeGreaterThan(1000 * C);
      expect(all.norms.dataSync()[0]).toBeGreaterThan(
        10 * Math.max(...all.norms.dataSync().slice(1)),
      );
      const alone = clippedGradientSum(model, tf.slice(x, 0, 1), tf.slice(y, 0, 1), {
        maxGradNorm: C,
        clipping,
      });
      expect(norm(alone)).toBeLessThanOrEqual(C * (1 + 1e-5));
      expect(norm(alone)).toBeGreaterThan(C * (1 - 1e-5));
      // The rest of the batch is unaffected by the huge example (per-example, not batch, clipping).
      const rest = clippedGradientSum(model, tf.slice(x, 1, 3), tf.slice(y, 1, 3), {
        maxGradNorm: C,
        clipping,
      });
      for (const k of Object.keys(all.sums)) {
        const diff = tf.max(tf.abs(tf.sub(all.sums[k], tf.add(alone.sums[k], rest.sums[k]))));
        expect(diff.dataSync()[0]).toBeLessThan(1e-6);
      }
      for (const r of [all, alone, rest]) release(r);
    }
    tf.dispose([base, labels, x, y]);
    model.dispose();
  });

  it('refuses BatchNormalization by name, on every path and in createDpSgd', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [4], units: 5 }),
        tfl.layers.batchNormalization({ name: 'bn1' }),
        tfl.layers.dense({ units: 2 }),
      ],
    });
    const x = tf.ones([2, 4]);
    const y = tf.tensor1d([0, 1], 'int32');
    for (const run of [
      () => clippingPlan(model),
      () => clippedGradientSum(model, x, y, { maxGradNorm: 1, clipping: 'reference' }),
      () =>
        createDpSgd(model, { noiseMultiplier: 1, maxGradNorm: 1 }, { examples: 10, batchSize: 2 }),
    ]) {
      let error: unknown;
      try {
        run();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ParryError);
      expect((error as ParryError).code).toBe('UNSUPPORTED');
      expect((error as ParryError).message).toMatch(/'bn1' is a BatchNormalization/);
    }
    tf.dispose([x, y]);
    model.dispose();
  });

  it('sends a model with a layer it has no fast rule for to the reference path, naming it', () => {
    const model = tfl.sequential({
      layers: [
        tfl.layers.dense({ inputShape: [4], units: 5, kernelInitializer: init(1) }),
        tfl.layers.layerNormalization({ name: 'ln' }),
        tfl.layers.dense({ units: 2, kernelInitializer: init(2) }),
      ],
    });
    const plan = clippingPlan(model);
    expect(plan.path).toBe('reference');
    expect(plan.reason).toMatch(/'ln' \(LayerNormalization\)/);
    expect(plan.layers.map((l) => l.rule)).toEqual(['reference', 'reference', 'reference']);
    const x = tf.randomNormal([3, 4], 0, 1, 'float32', 1);
    const y = tf.tensor1d([0, 1, 1], 'int32');
    expect(() => clippedGradientSum(model, x, y, { maxGradNorm: 1, clipping: 'fast' })).toThrow(
      /'ln'/,
    );
    const auto = clippedGradientSum(model, x, y, { maxGradNorm: 1 });
    expect(auto.norms.shape).toEqual([3]);
    release(auto);
    const cnn = clippingPlan(
      buildArchitecture('cnn-small', { inputShape: [8, 8, 1], numClasses: 3 }),
    );
    expect(cnn.layers.map((l) => `${l.name}:${l.rule}`)).toEqual([
      'conv1:per-example',
      'conv2:per-example',
      'dense1:ghost-norm',
      'logits:ghost-norm',
    ]);
    tf.dispose([x, y]);
    model.dispose();
  });

  it('leaks no tensors over repeated calls on either path', () => {
    const model = buildArchitecture('cnn-tiny', {
      inputShape: [12, 12, 1],
      numClasses: 3,
      seed: 2,
    });
    const { x, y } = batch([12, 12, 1], 3, 1);
    for (const clipping of ['fast', 'reference'] as const) {
      release(clippedGradientSum(model, x, y, { maxGradNorm: 1, clipping }));
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++)
        release(clippedGradientSum(model, x, y, { maxGradNorm: 1, clipping }));
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose([x, y]);
    model.dispose();
  });
});
