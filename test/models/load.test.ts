import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier, saveLayersModel, TfjsClassifier } from '../../src/models/index.js';
import { exportOnnx } from '../../src/models/onnx/from-layers.js';
import { writeOnnx } from '../../src/models/onnx/graph.js';
import { caught, tempDir } from './tmp.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  tmp = await tempDir('load');
});
afterAll(() => tmp.cleanup());

// A 4 -> 3 affine map and two inputs, computed by hand below.
const W = [
  [0.5, -1, 2],
  [1.5, 0.25, -0.5],
  [-2, 1, 0.75],
  [0.1, 0.2, 0.3],
];
const B = [0.1, -0.2, 0.3];
const X = [
  [1, 2, 3, 4],
  [-1, 0.5, 0, 2],
];
const affine = (x: number[]) => B.map((b, j) => b + x.reduce((a, xi, i) => a + xi * W[i][j], 0));
const EXPECTED = X.map(affine);

function expectClose(got: number[][], want: number[][], tol = 1e-5) {
  expect(got.length).toBe(want.length);
  got.forEach((row, r) => {
    row.forEach((v, c) => {
      expect(Math.abs(v - want[r][c])).toBeLessThan(tol);
    });
  });
}

const float = { type: 'DT_FLOAT' };
const dims = (...d: number[]) => ({ dim: d.map((size) => ({ size: String(size) })) });

/**
 * A GraphModel model.json as tensorflowjs_converter writes it (GraphDef as JSON: Placeholder,
 * Const weights, MatMul, BiasAdd), optionally followed by Softmax and Identity.
 */
async function writeGraphModel(dir: string, softmax: boolean) {
  const node: object[] = [
    { name: 'x', op: 'Placeholder', attr: { dtype: float, shape: { shape: dims(-1, 4) } } },
    {
      name: 'W',
      op: 'Const',
      attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims(4, 3) } } },
    },
    {
      name: 'b',
      op: 'Const',
      attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: dims(3) } } },
    },
    {
      name: 'MatMul',
      op: 'MatMul',
      input: ['x', 'W'],
      attr: { T: float, transpose_a: { b: false }, transpose_b: { b: false } },
    },
    {
      name: 'BiasAdd',
      op: 'BiasAdd',
      input: ['MatMul', 'b'],
      attr: { T: float, data_format: { s: Buffer.from('NHWC').toString('base64') } },
    },
  ];
  if (softmax) {
    node.push({ name: 'Softmax', op: 'Softmax', input: ['BiasAdd'], attr: { T: float } });
    node.push({ name: 'Identity', op: 'Identity', input: ['Softmax'], attr: { T: float } });
  }
  const json = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'hand-written for parry tests',
    modelTopology: { node, library: {}, versions: { producer: 1 } },
    weightsManifest: [
      {
        paths: ['weights.bin'],
        weights: [
          { name: 'W', shape: [4, 3], dtype: 'float32' },
          { name: 'b', shape: [3], dtype: 'float32' },
        ],
      },
    ],
    userDefinedMetadata: { parry: { bounds: [-5, 5], classNames: ['a', 'b', 'c'] } },
  };
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  await writeFile(path.join(dir, 'weights.bin'), new Float32Array([...W.flat(), ...B]));
}

describe('GraphModel directories', () => {
  it('loads a hand-written MatMul + BiasAdd graph and matches the hand computation', async () => {
    const dir = tmp.next();
    await writeGraphModel(dir, false);
    const c = await loadClassifier(dir);
    expect(c.format).toBe('graph-model');
    expect(c.graphModel).toBeDefined();
    // The default engine (auto) leaves a GraphModel on tfjs; asking for ORT is refused.
    expect(c.engine).toBeUndefined();
    await expect(loadClassifier(dir, { engine: 'ort' })).rejects.toThrow(/GraphModel/);
    expect(c.inputShape).toEqual([4]);
    expect(c.numClasses).toBe(3);
    expect(c.bounds).toEqual([-5, 5]);
    expect(c.classNames).toEqual(['a', 'b', 'c']);
    expect(c.outputWasSoftmax).toBe(false);
    const x = tf.tensor2d(X);
    expectClose((await c.logits(x).array()) as number[][], EXPECTED);
    // d(sum of logits)/dx = row sums of W, for every example
    const g = tf.grad((z: tf.Tensor) => tf.sum(c.logits(z)))(x);
    expectClose(
      (await g.array()) as number[][],
      X.map(() => W.map((row) => row[0] + row[1] + row[2])),
    );
    const info = c.info();
    expect(info.params).toBe(15);
    expect(info.layers).toEqual([
      { name: 'MatMul', className: 'MatMul', outputShape: null, params: 12 },
      { name: 'BiasAdd', className: 'BiasAdd', outputShape: null, params: 3 },
    ]);
    x.dispose();
    g.dispose();
    c.dispose();
  });

  it('reads logits before a final Softmax (+ Identity) and says so', async () => {
    const dir = tmp.next();
    await writeGraphModel(dir, true);
    const c = await loadClassifier(dir);
    expect(c.outputWasSoftmax).toBe(true);
    const x = tf.tensor2d(X);
    expectClose((await c.logits(x).array()) as number[][], EXPECTED);
    x.dispose();
    c.dispose();
  });

  it('checks input shapes against the Placeholder', async () => {
    const dir = tmp.next();
    await writeGraphModel(dir, false);
    const c = await loadClassifier(dir);
    const e = await caught(() => c.logits(tf.zeros([2, 5])));
    expect([e.code, e.message]).toEqual([
      'BAD_INPUT',
      "classifier: input shape [2,5] does not match the model's [4]",
    ]);
    c.dispose();
  });
});

describe('LayersModel with a softmax output', () => {
  function setAffine(layer: tfl.layers.Layer) {
    layer.setWeights([tf.tensor2d(W), tf.tensor1d(B)]);
  }
  const cases: [string, () => tfl.LayersModel][] = [
    [
      'Dense(activation softmax)',
      () => {
        const d = tfl.layers.dense({ units: 3, activation: 'softmax', inputShape: [4] });
        const m = tfl.sequential({ layers: [d] });
        setAffine(d);
        return m;
      },
    ],
    [
      'Dense + Activation(softmax)',
      () => {
        const d = tfl.layers.dense({ units: 3, inputShape: [4] });
        const m = tfl.sequential({ layers: [d, tfl.layers.activation({ activation: 'softmax' })] });
        setAffine(d);
        return m;
      },
    ],
    [
      'Dense + Softmax layer',
      () => {
        const d = tfl.layers.dense({ units: 3, inputShape: [4] });
        const m = tfl.sequential({ layers: [d, tfl.layers.softmax()] });
        setAffine(d);
        return m;
      },
    ],
    [
      'functional model, Dense(activation softmax)',
      () => {
        const input = tfl.input({ shape: [4] });
        const d = tfl.layers.dense({ units: 3, activation: 'softmax' });
        const m = tfl.model({ inputs: input, outputs: d.apply(input) as tfl.SymbolicTensor });
        setAffine(d);
        return m;
      },
    ],
  ];

  it.each(cases)('%s: logits are the pre-softmax values', async (_, make) => {
    const model = make();
    const x = tf.tensor2d(X);
    // the stored model really outputs probabilities
    const probs = (await (model.predict(x) as tf.Tensor).array()) as number[][];
    expect(probs[0].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    const dir = tmp.next();
    await saveLayersModel(model, dir);
    const c = await loadClassifier(dir);
    expect(c.outputWasSoftmax).toBe(true);
    expect(c.info().outputWasSoftmax).toBe(true);
    expectClose((await c.logits(x).array()) as number[][], EXPECTED);
    x.dispose();
    model.dispose();
    c.dispose();
  });
});

describe('non-finite weights', () => {
  it.each([
    ['float32', false],
    ['float16', true],
  ] as const)(
    'a %s LayersModel with a NaN weight is refused, naming the weight',
    async (_, float16) => {
      const d = tfl.layers.dense({ units: 3, inputShape: [4], name: 'head' });
      const m = tfl.sequential({ layers: [d] });
      const w = W.map((row) => [...row]);
      w[2][1] = Number.NaN;
      w[0][0] = Number.POSITIVE_INFINITY;
      d.setWeights([tf.tensor2d(w), tf.tensor1d(B)]);
      const dir = tmp.next();
      await saveLayersModel(m, dir, { float16 });
      m.dispose();
      const before = tf.memory().numTensors;
      const e = await caught(() => loadClassifier(dir));
      expect(e.code).toBe('BAD_FILE');
      expect(e.message).toMatch(
        /model\.json: weight 'head\/kernel' has 2 of 12 values NaN or infinite/,
      );
      expect(tf.memory().numTensors).toBe(before);
    },
  );

  it('an ONNX model with an infinite initializer is refused', async () => {
    const m = tfl.sequential({ layers: [tfl.layers.dense({ units: 3, inputShape: [4] })] });
    m.layers[0].setWeights([tf.tensor2d(W), tf.tensor1d([0.1, Number.NEGATIVE_INFINITY, 0.3])]);
    const file = path.join(tmp.root, 'inf.onnx');
    // Export writes what it is given: the check is on load.
    await writeFile(file, writeOnnx(exportOnnx(new TfjsClassifier(m))));
    m.dispose();
    const e = await caught(() => loadClassifier(file));
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(/inf\.onnx: weight '.*' has 1 of 3 values NaN or infinite/);
  });
});

describe('memory', () => {
  it('loadClassifier + logits + dispose leaves no tensors, for both formats', async () => {
    const graphDir = tmp.next();
    await writeGraphModel(graphDir, true);
    const layersDir = tmp.next();
    const d = tfl.layers.dense({ units: 3, activation: 'softmax', inputShape: [4] });
    const m = tfl.sequential({ layers: [d] });
    await saveLayersModel(m, layersDir, { metadata: { mean: [0.5], std: [2] } });
    m.dispose();
    const x = tf.tensor2d(X);
    for (const dir of [graphDir, layersDir]) {
      const before = tf.memory().numTensors;
      const c = await loadClassifier(dir);
      tf.tidy(() => {
        c.logits(x);
        tf.grad((z: tf.Tensor) => tf.sum(c.logits(z)))(x);
      });
      c.dispose();
      expect(tf.memory().numTensors).toBe(before);
    }
    x.dispose();
  });

  it('a model rejected after it was built is freed', async () => {
    const dir = tmp.next();
    await writeGraphModel(dir, false);
    const before = tf.memory().numTensors;
    const e = await caught(() => loadClassifier(dir, { classNames: ['only one'] }));
    expect([e.code, e.message]).toEqual([
      'BAD_OPTION',
      'TfjsClassifier: 1 classNames for 3 classes',
    ]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
