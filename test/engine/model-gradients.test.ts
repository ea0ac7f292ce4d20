/**
 * Gradients parry needs, on every reference architecture: w.r.t. the input and w.r.t. all
 * weights, of cross-entropy, KL-divergence and margin losses. On each backend none may throw
 * "not registered"; wasm must agree with cpu; both must agree with central finite differences
 * along a random direction (directional derivatives stay accurate across ReLU kinks, unlike
 * coordinate-wise differences).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engine/backend.js';
import { Rng } from '../../src/engine/rng.js';
import { buildArchitecture } from '../../src/models/index.js';
import { crossEntropy, klDivergence, margin } from '../../src/objectives/losses.js';

const ARCHS: { name: string; inputShape: number[] }[] = [
  { name: 'mlp', inputShape: [28, 28, 1] },
  { name: 'cnn-small', inputShape: [28, 28, 1] },
  { name: 'cnn-cifar', inputShape: [32, 32, 3] },
];
const LOSSES: Record<string, (logits: tf.Tensor2D, y: tf.Tensor1D, ref: tf.Tensor2D) => tf.Scalar> =
  {
    'cross-entropy': (z, y) => tf.sum(crossEntropy(z, y)),
    kl: (z, _y, ref) => tf.sum(klDivergence(ref, z)),
    margin: (z, y) => tf.sum(margin(z, y)),
  };
const BATCH = 2;

interface Grads {
  input: Float32Array;
  weights: Float32Array[];
  /** Directional derivatives along the fixed random directions, by finite differences. */
  fdInput: number;
  fdWeights: number;
}

function randomArray(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal());
}

function normalize(parts: Float32Array[]): Float32Array[] {
  const norm = Math.sqrt(parts.reduce((s, p) => s + dot(p, p), 0));
  return parts.map((p) => p.map((v) => v / norm));
}

/** Gradients and finite differences of `loss` for one architecture on the current backend. */
function gradients(
  model: tfl.LayersModel,
  lossName: string,
  inputShape: number[],
): Grads & { dir: Float32Array; weightDirs: Float32Array[] } {
  const rng = new Rng(11);
  const size = BATCH * inputShape.reduce((a, b) => a * b, 1);
  const xData = Float32Array.from({ length: size }, () => rng.next());
  // Unit-norm directions, so a step h moves the point by exactly h.
  const dir = normalize([randomArray(rng, size)])[0];
  const weightDirs = normalize(
    model.trainableWeights.map((w) =>
      randomArray(
        rng,
        (w.shape as number[]).reduce((a, b) => a * b, 1),
      ),
    ),
  );
  const loss = LOSSES[lossName];
  // Results leave through this variable: tf.tidy walks returned values, which is slow for
  // large typed arrays (DESIGN.md).
  let result!: Grads & { dir: Float32Array; weightDirs: Float32Array[] };
  tf.tidy(() => {
    const x = tf.tensor(xData, [BATCH, ...inputShape]);
    const y = tf.tensor1d([3, 7], 'int32');
    const ref = tf.tensor2d(
      Array.from({ length: BATCH * 10 }, (_, i) => Math.sin(i)),
      [BATCH, 10],
    );
    const f = (z: tf.Tensor) => loss(model.apply(z, { training: false }) as tf.Tensor2D, y, ref);
    const input = tf.grad(f)(x).dataSync() as Float32Array;
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const { grads } = tf.variableGrads(() => f(x), vars);
    const weights = vars.map((v) => grads[v.name].dataSync() as Float32Array);
    // Central differences along the random directions.
    const h = 1e-2;
    const d = tf.tensor(dir, x.shape);
    const fdInput =
      (f(tf.add(x, tf.mul(d, h))).dataSync()[0] - f(tf.sub(x, tf.mul(d, h))).dataSync()[0]) /
      (2 * h);
    const original = vars.map((v) => v.clone());
    const shift = (sign: number) =>
      vars.forEach((v, i) => {
        v.assign(tf.add(original[i], tf.mul(tf.tensor(weightDirs[i], v.shape), sign * h)));
      });
    shift(1);
    const plus = f(x).dataSync()[0];
    shift(-1);
    const minus = f(x).dataSync()[0];
    vars.forEach((v, i) => {
      v.assign(original[i]);
    });
    result = { input, weights, fdInput, fdWeights: (plus - minus) / (2 * h), dir, weightDirs };
  });
  return result;
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den + 1e-6);
}

describe('model gradients on wasm and cpu', () => {
  afterAll(async () => {
    await initBackend('wasm');
  });

  for (const arch of ARCHS) {
    for (const lossName of Object.keys(LOSSES)) {
      it(`${arch.name} / ${lossName}: input and weight gradients agree across backends and with finite differences`, async () => {
        const results: Record<string, Grads & { dir: Float32Array; weightDirs: Float32Array[] }> =
          {};
        for (const backend of ['wasm', 'cpu']) {
          await initBackend(backend);
          const model = buildArchitecture(arch.name, {
            inputShape: arch.inputShape,
            numClasses: 10,
            seed: 5,
          });
          const before = tf.memory().numTensors;
          results[backend] = gradients(model, lossName, arch.inputShape);
          expect(tf.memory().numTensors).toBe(before);
          model.dispose();
        }
        const { wasm, cpu } = results;
        expect(relErr(wasm.input, cpu.input)).toBeLessThan(1e-3);
        wasm.weights.forEach((w, i) => {
          expect(relErr(w, cpu.weights[i]), `weight ${i}`).toBeLessThan(1e-3);
        });
        for (const r of [wasm, cpu]) {
          expect(r.input.every(Number.isFinite)).toBe(true);
          const analyticInput = dot(r.input, r.dir);
          const analyticWeights = r.weights.reduce((s, w, i) => s + dot(w, r.weightDirs[i]), 0);
          expect(Math.abs(analyticInput - r.fdInput)).toBeLessThan(
            0.02 * Math.abs(analyticInput) + 1e-3,
          );
          expect(Math.abs(analyticWeights - r.fdWeights)).toBeLessThan(
            0.02 * Math.abs(analyticWeights) + 1e-3,
          );
        }
      });
    }
  }
});
