/**
 * IBP and CROWN on ONNX models: the reference models exported to ONNX get the LayersModel's
 * bounds; the PyTorch ResNet and the PyTorch fixture (residual blocks, a grouped convolution,
 * PyTorch's explicit pads) get IBP boxes that contain sampled points and shrink to the logits at
 * eps 0; unsupported graphs are refused by node; nothing leaks.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  certifyCrown,
  certifyIbp,
  crownMarginBounds,
  ibpBounds,
  ibpMarginBounds,
} from '../../../src/certify/index.js';
import { loadDataset, takeFirst } from '../../../src/data/index.js';
import type { OnnxModel } from '../../../src/engine/onnx/ir.js';
import { packageRoot } from '../../../src/engine/paths.js';
import { loadClassifier, type TfjsClassifier } from '../../../src/models/index.js';
import { exportOnnx } from '../../../src/models/onnx/from-layers.js';
import { writeOnnx } from '../../../src/models/onnx/graph.js';
import { OnnxNetwork } from '../../../src/models/onnx/network.js';
import { TfjsClassifier as Classifier } from '../../../src/models/tfjs-classifier.js';
import { maxDiff, random } from '../onnx-helpers.js';
import { caught, tempDir } from '../tmp.js';
import { sampleBox } from './helpers.js';

const root = packageRoot();
const tmp = await tempDir('bounds-onnx');
afterAll(() => tmp.cleanup());

const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 6);
const images = (n: number) => {
  const per = data.x.length / data.shape[0];
  return tf.tensor(data.x.subarray(0, n * per), [n, ...data.shape.slice(1)]);
};
const labelsOf = (n: number) => tf.tensor1d(data.labels.subarray(0, n), 'int32');
const read = (t: tf.Tensor) => Array.from(t.dataSync());

/** The classifier of `model` exported to ONNX and loaded back (run on tfjs ops). */
async function exported(model: TfjsClassifier, name: string): Promise<TfjsClassifier> {
  const file = path.join(tmp.root, `${name}.onnx`);
  writeFileSync(file, writeOnnx(exportOnnx(model)));
  return loadClassifier(file, { engine: 'tfjs' });
}

describe('the reference models exported to ONNX', () => {
  it.each([
    ['fmnist-mlp', 6],
    ['fmnist-mlp-ibp', 6],
    ['fmnist-cnn-small', 2],
    ['fmnist-cnn-ibp', 2],
  ] as [string, number][])(
    '%s: IBP and CROWN bounds equal the LayersModel ones',
    async (name, n) => {
      const layers = await loadClassifier(path.join(root, 'models', name), { engine: 'tfjs' });
      const onnx = await exported(layers, name);
      expect(onnx.format).toBe('onnx');
      const x = images(n);
      const labels = labelsOf(n);
      for (const eps of [0.005, 0.02]) {
        const want = ibpMarginBounds(layers, x, labels, eps);
        const got = ibpMarginBounds(onnx, x, labels, eps);
        for (const key of ['lower', 'upper', 'marginLower'] as const) {
          expect(maxDiff(read(got[key]), read(want[key]))).toBeLessThan(1e-3);
        }
        tf.dispose([
          want.lower,
          want.upper,
          want.marginLower,
          got.lower,
          got.upper,
          got.marginLower,
        ]);
      }
      const cfg = { maxIntermediateNeurons: 256 };
      const want = crownMarginBounds(layers, x, labels, 0.005, cfg);
      const got = crownMarginBounds(onnx, x, labels, 0.005, cfg);
      for (const key of ['lower', 'upper', 'marginLower'] as const) {
        expect(maxDiff(read(got[key]), read(want[key]))).toBeLessThan(1e-3);
      }
      tf.dispose([want.lower, want.upper, want.marginLower, got.lower, got.upper, got.marginLower]);
      tf.dispose([x, labels]);
      layers.dispose();
      onnx.dispose();
    },
    120_000,
  );
});

describe.each([
  ['models/fmnist-resnet', 'the PyTorch ResNet'],
  ['test/fixtures/torch-tiny/model.onnx', 'the PyTorch fixture (grouped convolution, max pooling)'],
])('%s (%s)', (file) => {
  it('IBP boxes contain the logits of sampled points and are the logits at eps 0', async () => {
    const model = await loadClassifier(path.join(root, file), { engine: 'tfjs' });
    const n = 2;
    const x =
      model.inputShape.join() === data.shape.slice(1).join()
        ? images(n)
        : tf.tensor(
            Float32Array.from(
              random(n * model.inputShape.reduce((a, b) => a * b), 3),
              (v) => v + 0.5,
            ),
            [n, ...model.inputShape],
          );
    const before = tf.memory().numTensors;
    // eps 0: the box is the point, and the bounds are its logits.
    const exact = ibpBounds(model, x, 0);
    const z = model.logits(x);
    expect(maxDiff(read(exact.lower), read(z))).toBeLessThan(1e-4);
    expect(maxDiff(read(exact.upper), read(z))).toBeLessThan(1e-4);
    tf.dispose([exact.lower, exact.upper, z]);
    expect(tf.memory().numTensors).toBe(before);
    const eps = 0.01;
    const b = ibpBounds(model, x, eps);
    const [lo, hi] = tf.tidy(() => [
      tf.maximum(tf.sub(x, eps), model.bounds[0]),
      tf.minimum(tf.add(x, eps), model.bounds[1]),
    ]);
    const per = 64;
    const points = sampleBox(lo, hi, per, 5);
    const logits = read(model.logits(points));
    const [lower, upper] = [read(b.lower), read(b.upper)];
    const k = model.numClasses;
    let inside = true;
    logits.forEach((v, i) => {
      const example = Math.floor(i / (per * k));
      const j = example * k + (i % k);
      if (v < lower[j] - 1e-4 || v > upper[j] + 1e-4) inside = false;
    });
    expect(inside).toBe(true);
    // A normally trained ResNet's IBP boxes are wide (thousands of logits at eps 0.001) but finite.
    expect(upper.every((u, i) => Number.isFinite(u) && u > lower[i])).toBe(true);
    tf.dispose([b.lower, b.upper, lo, hi, points, x]);
    model.dispose();
  });

  it('CROWN refuses the residual join by name; IBP certifies', async () => {
    const model = await loadClassifier(path.join(root, file), { engine: 'tfjs' });
    const x = tf.fill([1, ...model.inputShape], 0.5);
    const labels = tf.tensor1d([0], 'int32');
    const before = tf.memory().numTensors;
    const e = await caught(() => certifyCrown(model, x, labels, 0.01));
    expect(e.code).toBe('UNSUPPORTED');
    expect(e.message).toMatch(/certifyCrown: Add node '.*Add' joins two branches .*IBP/);
    expect(tf.memory().numTensors).toBe(before);
    const r = await certifyIbp(model, x, labels, 0);
    expect(r.certified).toHaveLength(1);
    tf.dispose([r.lower, r.upper, r.marginLower, x, labels]);
    model.dispose();
  });
});

/** input x (default [N, 2, 4, 4]) → the nodes given → output 'y' [N, K]. */
function graph(
  nodes: [string, string[], string[], Record<string, unknown>?][],
  weights: Record<string, [number[], number[]]>,
  input: (number | null)[] = [null, 2, 4, 4],
): OnnxModel {
  return {
    irVersion: 8,
    opsets: [{ domain: '', version: 13 }],
    producerName: 'test',
    metadata: {},
    graph: {
      name: 'g',
      nodes: nodes.map(([opType, inputs, outputs, attributes], i) => ({
        opType,
        name: `n${i}`,
        domain: '',
        inputs,
        outputs,
        attributes: (attributes ?? {}) as OnnxModel['graph']['nodes'][number]['attributes'],
      })),
      initializers: new Map(
        Object.entries(weights).map(([name, [dims, v]]) => [
          name,
          { name, dims, dtype: 'float32' as const, data: Float32Array.from(v) },
        ]),
      ),
      inputs: [{ name: 'x', shape: input }],
      outputs: [{ name: 'y', shape: [null, 3] }],
    },
  };
}

const classifier = (m: OnnxModel, layout: 'NCHW' | 'NHWC' = 'NCHW') =>
  new Classifier(new OnnxNetwork(m, 'test.onnx', { layout }));
const fill = (n: number, seed: number) => Array.from(random(n, seed));

/** IBP at eps 0 is the logits; at `eps` its box holds the logits of 200 sampled points each. */
function expectExactAndSound(model: TfjsClassifier, x: tf.Tensor, eps: number): void {
  const z = model.logits(x);
  const exact = ibpBounds(model, x, 0);
  expect(maxDiff(read(exact.lower), read(z))).toBeLessThan(1e-5);
  expect(maxDiff(read(exact.upper), read(z))).toBeLessThan(1e-5);
  const b = ibpBounds(model, x, eps);
  const [lo, hi] = tf.tidy(() => [
    tf.maximum(tf.sub(x, eps), model.bounds[0]),
    tf.minimum(tf.add(x, eps), model.bounds[1]),
  ]);
  const per = 200;
  const points = sampleBox(lo, hi, per, 11);
  const logits = read(model.logits(points));
  const [lower, upper] = [read(b.lower), read(b.upper)];
  const k = model.numClasses;
  let outside = 0;
  logits.forEach((v, i) => {
    const j = Math.floor(i / (per * k)) * k + (i % k);
    if (v < lower[j] - 1e-5 || v > upper[j] + 1e-5) outside++;
  });
  expect(outside).toBe(0);
  expect(upper.every((u, i) => u > lower[i])).toBe(true);
  tf.dispose([z, exact.lower, exact.upper, b.lower, b.upper, lo, hi, points]);
}

describe('graph shapes', () => {
  it('transposes, reshapes, constant arithmetic, Sub joins and BatchNormalization follow the ONNX element order', async () => {
    // x → BN → (·c + d) → Conv(stride 2, pads 1 0 0 1) → Relu → [Transpose to NHWC → Flatten]
    //   − Relu(Conv 1×1 of x, stride 2 pads) → MatMul → Add bias.
    const model = classifier(
      graph(
        [
          ['BatchNormalization', ['x', 'g', 'b', 'm', 'v'], ['bn']],
          ['Mul', ['bn', 'c'], ['mul']],
          ['Sub', ['d', 'mul'], ['sub']],
          ['Conv', ['sub', 'w1', 'w1b'], ['c1'], { strides: [2, 2], pads: [1, 0, 0, 1] }],
          ['Relu', ['c1'], ['r1']],
          ['Conv', ['sub', 'w2'], ['c2'], { strides: [2, 2] }],
          ['Tanh', ['c2'], ['r2']],
          ['Sub', ['r1', 'r2'], ['j']],
          ['Transpose', ['j'], ['t'], { perm: [0, 2, 3, 1] }],
          ['Flatten', ['t'], ['f'], { axis: 1 }],
          ['MatMul', ['f', 'k'], ['mm']],
          ['Add', ['mm', 'kb'], ['y']],
        ],
        {
          g: [[2], [1.5, 0.7]],
          b: [[2], [0.1, -0.2]],
          m: [[2], [0.3, 0.6]],
          v: [[2], [0.5, 2]],
          c: [
            [2, 1, 1],
            [2, -1],
          ],
          d: [[1, 2, 1, 4], fill(8, 1)],
          w1: [[3, 2, 3, 3], fill(54, 2)],
          w1b: [[3], [0.1, 0.2, -0.1]],
          w2: [[3, 2, 1, 1], fill(6, 3)],
          k: [[12, 3], fill(36, 4)],
          kb: [[3], [0.5, 0, -0.5]],
        },
      ),
    );
    expect(model.inputShape).toEqual([4, 4, 2]);
    const x = tf.tensor(
      Float32Array.from(random(64, 9), (v) => v + 0.5),
      [2, 4, 4, 2],
    );
    expectExactAndSound(model, x, 0.05);
    x.dispose();
    model.dispose();
  });

  it('an NHWC-layout graph: grouped convolution, same pads, Clip, LeakyRelu, pooling, GAP', async () => {
    // x [N, 4, 4, 2] (NHWC) → Transpose to NCHW → Conv(group 2, SAME_UPPER) → Clip(0, 6)
    //   → AveragePool 2×2 → LeakyRelu → MaxPool 1×1 → GAP → Flatten → Gemm(transB).
    const model = classifier(
      graph(
        [
          ['Transpose', ['x'], ['t'], { perm: [0, 3, 1, 2] }],
          ['Conv', ['t', 'w'], ['c'], { group: 2, auto_pad: 'SAME_UPPER' }],
          ['Clip', ['c', 'lo', 'hi'], ['r']],
          ['AveragePool', ['r'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] }],
          ['LeakyRelu', ['p'], ['l'], { alpha: 0.1 }],
          ['MaxPool', ['l'], ['m'], { kernel_shape: [1, 1] }],
          ['GlobalAveragePool', ['m'], ['g']],
          ['Flatten', ['g'], ['f']],
          ['Gemm', ['f', 'k', 'kb'], ['y'], { transB: 1 }],
        ],
        {
          w: [[4, 1, 3, 3], fill(36, 6).map((v) => 4 * v)],
          lo: [[], [0]],
          hi: [[], [6]],
          k: [[3, 4], fill(12, 7)],
          kb: [[3], [0.1, 0, -0.1]],
        },
        [null, 4, 4, 2],
      ),
      'NHWC',
    );
    expect(model.inputShape).toEqual([4, 4, 2]);
    const x = tf.tensor(
      Float32Array.from(random(64, 10), (v) => v + 0.5),
      [2, 4, 4, 2],
    );
    expectExactAndSound(model, x, 0.1);
    x.dispose();
    model.dispose();
  });

  it('an operator without a bound rule, and an input-times-input product, are named', async () => {
    const w = { w: [[12, 3], fill(36, 5)] } as Record<string, [number[], number[]]>;
    const cases: [OnnxModel, RegExp][] = [
      [
        graph(
          [
            ['Flatten', ['x'], ['f'], { axis: 1 }],
            ['Slice', ['f', 's0', 's1', 'ax'], ['s']],
            ['MatMul', ['s', 'w'], ['y']],
          ],
          { ...w, s0: [[1], [0]], s1: [[1], [12]], ax: [[1], [1]] },
        ),
        /ibpBounds: Slice node 'n1': no bound rule for ONNX operator Slice/,
      ],
      [
        graph(
          [
            ['Flatten', ['x'], ['f'], { axis: 1 }],
            ['Mul', ['f', 'f'], ['sq']],
            ['Slice', ['sq', 's0', 's1', 'ax'], ['s']],
            ['MatMul', ['s', 'w'], ['y']],
          ],
          { ...w, s0: [[1], [0]], s1: [[1], [12]], ax: [[1], [1]] },
        ),
        /ibpBounds: Mul node 'n1': combines a value with itself/,
      ],
    ];
    for (const [m, pattern] of cases) {
      const model = classifier(m);
      const x = tf.zeros([1, ...model.inputShape]);
      const before = tf.memory().numTensors;
      const e = await caught(() => ibpBounds(model, x, 0.1));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.message).toMatch(pattern);
      expect(tf.memory().numTensors).toBe(before);
      x.dispose();
      model.dispose();
    }
  });
});

describe('tensor hygiene', () => {
  it('repeated IBP and CROWN on an ONNX model leave the tensor count flat', async () => {
    const model = await loadClassifier(path.join(root, 'models/fmnist-resnet'), { engine: 'tfjs' });
    const layers = await loadClassifier(path.join(root, 'models/fmnist-mlp'), { engine: 'tfjs' });
    const mlp = await exported(layers, 'hygiene');
    layers.dispose();
    const x = images(2);
    const labels = labelsOf(2);
    const run = async () => {
      const a = await certifyIbp(model, x, labels, 0.01);
      const b = await certifyCrown(mlp, x, labels, 0.01);
      tf.dispose([a.lower, a.upper, a.marginLower, b.lower, b.upper, b.marginLower]);
    };
    await run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await run();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, labels]);
    model.dispose();
    mlp.dispose();
  });
});
