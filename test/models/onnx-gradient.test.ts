/**
 * Gradient graphs (src/engine/onnx/gradient.ts) run by ONNX Runtime against tfjs's autodiff of the
 * same network: the vector-Jacobian product of the logits with a random cotangent, for the
 * reference models exported to ONNX, the PyTorch-exported fixture, and single operators with
 * strides, same padding, groups, overlapping and tied max pools; every rule also against central
 * finite differences.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { vjpGraph } from '../../src/engine/onnx/gradient.js';
import type { OnnxAttribute, OnnxModel } from '../../src/engine/onnx/ir.js';
import { packageRoot } from '../../src/engine/paths.js';
import { loadClassifier } from '../../src/models/index.js';
import { exportOnnx } from '../../src/models/onnx/from-layers.js';
import { readOnnx, writeOnnx } from '../../src/models/onnx/graph.js';
import { executeGraph, OnnxNetwork } from '../../src/models/onnx/network.js';
import { type OperatorCase, oneNode, random, SHARED_OPERATOR_CASES } from './onnx-helpers.js';

const root = packageRoot();

/** [logits, dx] of the VJP graph through ONNX Runtime, for NCHW `x` and cotangent `d`. */
async function ortVjp(model: OnnxModel, shapes: Map<string, number[]>, x: tf.Tensor, d: tf.Tensor) {
  const grad = vjpGraph(model, shapes);
  const session = await ort.InferenceSession.create(writeOnnx(grad));
  try {
    const [input, seed] = grad.graph.inputs.map((i) => i.name);
    const out = await session.run({
      [input]: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape),
      [seed]: new ort.Tensor('float32', d.dataSync() as Float32Array, d.shape),
    });
    const [logits, dx] = grad.graph.outputs.map((o) => out[o.name]);
    return { logits: logits.data as Float32Array, dx: dx.data as Float32Array, dims: dx.dims };
  } finally {
    await session.release();
  }
}

/** The same VJP by tfjs autodiff through parry's executor of the graph. */
function tfjsVjp(model: OnnxModel, x: tf.Tensor, d: tf.Tensor) {
  return tf.tidy(() => {
    const weights = [...model.graph.initializers.values()].map(
      (t) => [t.name, tf.tensor(t.data, t.dims, t.dtype)] as const,
    );
    const run = (z: tf.Tensor) => {
      const values = new Map<string, tf.Tensor>(weights);
      values.set(model.graph.inputs[0].name, z);
      return executeGraph(model.graph, values, model.graph.outputs[0].name);
    };
    const dx = tf.grad((z: tf.Tensor) => tf.sum(tf.mul(run(z), d)))(x);
    return dx.dataSync();
  });
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number) {
  expect(got.length).toBe(want.length);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < got.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
  }
  expect(diff, `max |diff| ${diff}, max |want| ${scale}`).toBeLessThanOrEqual(
    tolerance * Math.max(scale, 1),
  );
}

/**
 * ⟨dx, v⟩ against the central difference of ⟨f(x), d⟩ along a random v (f: parry's executor of
 * the graph), to 1% — every rule is checked against calculus, not only against tfjs's autodiff.
 */
function expectFiniteDifference(model: OnnxModel, x: tf.Tensor, d: tf.Tensor, dx: Float32Array) {
  const weights = () =>
    new Map<string, tf.Tensor>(
      [...model.graph.initializers.values()].map((t) => [
        t.name,
        tf.tensor(t.data, t.dims, t.dtype),
      ]),
    );
  const value = (z: tf.Tensor) =>
    tf.tidy(() => {
      const v = weights();
      v.set(model.graph.inputs[0].name, z);
      return tf
        .sum(tf.mul(executeGraph(model.graph, v, model.graph.outputs[0].name), d))
        .dataSync()[0];
    });
  const v = tf.tensor(random(x.size, 13), x.shape);
  // Small, so few values cross a kink (ReLU, clip ends, a max pool's choice) along the way.
  const eps = 2e-3;
  const step = (sign: number) => tf.tidy(() => tf.add(x, tf.mul(v, sign * eps)));
  const [plus, minus] = [step(1), step(-1)];
  const numeric = (value(plus) - value(minus)) / (2 * eps);
  const analytic = tf.tidy(() => tf.sum(tf.mul(tf.tensor(dx, x.shape), v)).dataSync()[0]);
  tf.dispose([v, plus, minus]);
  expect(Math.abs(numeric - analytic), `numeric ${numeric}, analytic ${analytic}`).toBeLessThan(
    1e-2 * Math.max(1, Math.abs(analytic)),
  );
}

describe('gradient graphs on ONNX Runtime equal tfjs autodiff', () => {
  const models: [string, () => Promise<{ model: OnnxModel; net: OnnxNetwork }>][] = [
    ...['fmnist-cnn-small', 'fmnist-mlp', 'fmnist-cnn-ibp'].map(
      (name) =>
        [
          name,
          async () => {
            const tfjs = await loadClassifier(path.join(root, 'models', name));
            const model = readOnnx(writeOnnx(exportOnnx(tfjs)), name);
            tfjs.dispose();
            return { model, net: new OnnxNetwork(model, name) };
          },
        ] as [string, () => Promise<{ model: OnnxModel; net: OnnxNetwork }>],
    ),
    [
      'PyTorch fixture',
      async () => {
        const file = path.join(root, 'test', 'fixtures', 'torch-tiny', 'model.onnx');
        const model = readOnnx(readFileSync(file), file);
        return { model, net: new OnnxNetwork(model, file) };
      },
    ],
  ];
  it.each(models)('%s', async (_, make) => {
    const { model, net } = await make();
    const [h, w, c] = net.inputShape.length === 3 ? net.inputShape : [0, 0, 0];
    const dims = net.inputShape.length === 3 ? [5, c, h, w] : [5, ...net.inputShape];
    const x = tf.tensor(
      Float32Array.from(
        random(
          dims.reduce((a, b) => a * b, 1),
          3,
        ),
        (v) => v + 0.5,
      ),
      dims,
    );
    const d = tf.tensor(random(5 * net.numClasses, 4), [5, net.numClasses]);
    const got = await ortVjp(model, net.valueShapes(), x, d);
    expect(got.dims).toEqual(dims);
    expectClose(got.dx, tfjsVjp(model, x, d), 1e-4);
    tf.dispose([x, d]);
    net.dispose();
  });
});

describe('single operators: gradient graphs on ONNX Runtime equal tfjs autodiff', () => {
  const cases: OperatorCase[] = [
    ...SHARED_OPERATOR_CASES,
    [
      'conv stride 2 with leftover rows',
      'Conv',
      { strides: [2, 2], kernel_shape: [2, 2] },
      { w: [[3, 4, 2, 2], random(48, 11)] },
    ],
    ['conv asymmetric pads', 'Conv', { pads: [1, 0, 2, 1] }, { w: [[5, 4, 3, 3], random(180, 3)] }],
    // Quantised values: many ties inside each window; the gradient goes where the forward pass took its max.
    [
      'max pool with ties',
      'MaxPool',
      { kernel_shape: [2, 2], strides: [2, 2] },
      {},
      Float32Array.from(random(648, 9), (v) => Math.round(v * 2)),
    ],
    ['average pool', 'AveragePool', { kernel_shape: [3, 3], strides: [2, 2] }, {}],
    ['leaky relu', 'LeakyRelu', { alpha: 0.2 }, {}],
    ['sigmoid', 'Sigmoid', {}, {}],
    ['tanh', 'Tanh', {}, {}],
    ['transpose', 'Transpose', { perm: [0, 3, 1, 2] }, {}],
  ];
  it.each(cases)('%s', async (_, op, attributes, weights, values) => {
    const model = oneNode(op, attributes, weights);
    const x = tf.tensor(values ?? random(648, 42), [2, 4, 9, 9]);
    const shapes = new Map<string, number[]>([['x', [1, 4, 9, 9]]]);
    for (const [name, [dims]] of Object.entries(weights)) shapes.set(name, dims);
    const y = tf.tidy(() => {
      const v = new Map<string, tf.Tensor>(
        [...model.graph.initializers.values()].map((t) => [t.name, tf.tensor(t.data, t.dims)]),
      );
      v.set('x', tf.slice(x, 0, 1));
      return executeGraph(model.graph, v, 'y', shapes);
    });
    const outShape = [2, ...y.shape.slice(1)];
    y.dispose();
    const d = tf.tensor(
      random(
        outShape.reduce((a, b) => a * b, 1),
        7,
      ),
      outShape,
    );
    const got = await ortVjp(model, shapes, x, d);
    expectClose(got.dx, tfjsVjp(model, x, d), 1e-5);
    // At ties a max pool has no derivative: there the forward pass's choice is the check.
    if (values === undefined) expectFiniteDifference(model, x, d, got.dx);
    tf.dispose([x, d]);
  });

  it('dilated conv (tfjs has no gradient for it): against central finite differences', async () => {
    const model = oneNode(
      'Conv',
      { pads: [1, 0, 2, 1], dilations: [2, 2] },
      { w: [[5, 4, 3, 3], random(180, 3)] },
    );
    const x = tf.tensor(random(648, 42), [2, 4, 9, 9]);
    const shapes = new Map<string, number[]>([
      ['x', [1, 4, 9, 9]],
      ['w', [5, 4, 3, 3]],
    ]);
    const f = (z: tf.Tensor) =>
      tf.tidy(() => {
        const v = new Map<string, tf.Tensor>([
          ['w', tf.tensor(random(180, 3), [5, 4, 3, 3])],
          ['x', z],
        ]);
        return executeGraph(model.graph, v, 'y', z.shape[0] === 1 ? shapes : undefined);
      });
    const y = f(tf.slice(x, 0, 1));
    const d = tf.tensor(random(2 * y.size, 7), [2, ...y.shape.slice(1)]);
    y.dispose();
    const { dx } = await ortVjp(model, shapes, x, d);
    const v = tf.tensor(random(648, 13), [2, 4, 9, 9]);
    const eps = 1e-2;
    const value = (sign: number) =>
      tf.tidy(() => tf.sum(tf.mul(f(tf.add(x, tf.mul(v, sign * eps))), d)).dataSync()[0]);
    const numeric = (value(1) - value(-1)) / (2 * eps);
    const analytic = tf.tidy(() => tf.sum(tf.mul(tf.tensor(dx, x.shape), v)).dataSync()[0]);
    expect(Math.abs(numeric - analytic)).toBeLessThan(1e-3 * Math.max(1, Math.abs(analytic)));
    tf.dispose([x, d, v]);
  });

  it('refuses an operator it has no rule for, by name', () => {
    const model = oneNode('Hardmax', {}, {});
    expect(() =>
      vjpGraph(
        model,
        new Map([
          ['x', [1, 4, 9, 9]],
          ['y', [1, 4, 9, 9]],
        ]),
      ),
    ).toThrow(/no gradient rule for ONNX operator Hardmax/);
  });
});

/** A model from nodes (x [batch, 4, 9, 9] in, y out) and initializers (float32 unless int). */
function graphModel(
  nodes: [string, string[], string, Record<string, OnnxAttribute>?][],
  constants: Record<string, [number[], ArrayLike<number>, ('float32' | 'int32')?]> = {},
): OnnxModel {
  const initializers = new Map(
    Object.entries(constants).map(([name, [dims, values, dtype = 'float32']]) => [
      name,
      {
        name,
        dims,
        dtype,
        data: dtype === 'float32' ? Float32Array.from(values) : Int32Array.from(values),
      },
    ]),
  );
  return {
    irVersion: 8,
    opsets: [{ domain: '', version: 13 }],
    producerName: 'test',
    metadata: {},
    graph: {
      name: 'g',
      nodes: nodes.map(([opType, inputs, output, attributes = {}], k) => ({
        opType,
        name: `n${k}`,
        domain: '',
        inputs,
        outputs: [output],
        attributes,
      })),
      initializers,
      inputs: [{ name: 'x', shape: [null, 4, 9, 9] }],
      outputs: [{ name: 'y', shape: [] }],
    },
  };
}

describe('more operators: gradient graphs on ONNX Runtime equal tfjs autodiff', () => {
  // Clip's input on a grid 0.02 away from its ends, so finite differences cross neither.
  const gridded = Float32Array.from(random(648, 42), (v) => Math.round(v * 8) / 8 + 0.03);
  const cases: [string, OnnxModel, Float32Array?][] = [
    ['elu (alpha 0.5)', graphModel([['Elu', ['x'], 'y', { alpha: 0.5 }]])],
    ['elu (alpha 1)', graphModel([['Elu', ['x'], 'y']])],
    ['softplus', graphModel([['Softplus', ['x'], 'y']])],
    [
      'clip (min and max inputs)',
      graphModel([['Clip', ['x', 'lo', 'hi'], 'y']], { lo: [[], [-0.2]], hi: [[], [0.3]] }),
      gridded,
    ],
    ['clip (max only)', graphModel([['Clip', ['x', '', 'hi'], 'y']], { hi: [[], [0.3]] }), gridded],
    ['softmax (last axis)', graphModel([['Softmax', ['x'], 'y', { axis: -1 }]])],
    [
      'pad (constant, asymmetric)',
      graphModel([['Pad', ['x', 'pads'], 'y']], {
        pads: [[8], [0, 0, 1, 2, 0, 0, 3, 0], 'int32'],
      }),
    ],
    [
      'concat of two live values along channels',
      graphModel([
        ['Relu', ['x'], 'r'],
        ['Concat', ['x', 'r'], 'y', { axis: 1 }],
      ]),
    ],
    [
      'broadcasting Mul, Div, Add and Sub between live values (a squeeze-excite gate)',
      graphModel(
        [
          ['Sigmoid', ['x'], 's'],
          ['GlobalAveragePool', ['s'], 'g'],
          ['Mul', ['x', 'g'], 'm'],
          ['Add', ['g', 'half'], 'g2'],
          ['Div', ['m', 'g2'], 'q'],
          ['Sub', ['q', 'g'], 'd'],
          ['Add', ['d', 'bias'], 'y'],
        ],
        {
          half: [[1], [0.5]],
          bias: [
            [4, 1, 1],
            [0.1, -0.2, 0.3, 0.4],
          ],
        },
      ),
    ],
    [
      'a live operand divided by a live one',
      graphModel([
        ['Sigmoid', ['x'], 's'],
        ['Div', ['x', 's'], 'y'],
      ]),
    ],
  ];
  it.each(cases)('%s', async (_, model, values) => {
    const x = tf.tensor(values ?? random(648, 42), [2, 4, 9, 9]);
    const shapes = new Map<string, number[]>([['x', [1, 4, 9, 9]]]);
    for (const t of model.graph.initializers.values()) shapes.set(t.name, [...t.dims]);
    const y = tf.tidy(() => {
      const v = new Map<string, tf.Tensor>(
        [...model.graph.initializers.values()].map((t) => [
          t.name,
          tf.tensor(t.data, t.dims, t.dtype),
        ]),
      );
      v.set('x', tf.slice(x, 0, 1));
      return executeGraph(model.graph, v, 'y', shapes);
    });
    const outShape = [2, ...y.shape.slice(1)];
    y.dispose();
    const d = tf.tensor(
      random(
        outShape.reduce((a, b) => a * b, 1),
        7,
      ),
      outShape,
    );
    const got = await ortVjp(model, shapes, x, d);
    expect(got.dims).toEqual([2, 4, 9, 9]);
    expectClose(got.dx, tfjsVjp(model, x, d), 1e-5);
    expectFiniteDifference(model, x, d, got.dx);
    tf.dispose([x, d]);
  });

  it('refuses reflect padding and a batch-axis concat by name', () => {
    const shapes = new Map<string, number[]>([
      ['x', [1, 4, 9, 9]],
      ['pads', [8]],
      ['y', [1, 4, 10, 9]],
      ['r', [1, 4, 9, 9]],
    ]);
    const reflect = graphModel([['Pad', ['x', 'pads'], 'y', { mode: 'reflect' }]], {
      pads: [[8], [0, 0, 1, 0, 0, 0, 0, 0], 'int32'],
    });
    expect(() => vjpGraph(reflect, shapes)).toThrow(/Pad node 'n0': mode 'reflect'/);
    const batch = graphModel([
      ['Relu', ['x'], 'r'],
      ['Concat', ['x', 'r'], 'y', { axis: 0 }],
    ]);
    shapes.set('y', [2, 4, 9, 9]);
    expect(() => vjpGraph(batch, shapes)).toThrow(/batch axis/);
  });
});
