/**
 * ONNX models: the reference models exported to ONNX give the logits of the tfjs models, both when
 * parry runs the file with tfjs ops and when ONNX Runtime (an independent implementation) runs it;
 * gradients through the ONNX graph equal the tfjs model's; operators cover strides, same padding,
 * groups and broadcasting (checked against ONNX Runtime); bad files are one-line errors.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { loadDataset, takeFirst } from '../../src/data/index.js';
import { packageRoot } from '../../src/engine/paths.js';
import { ParryError } from '../../src/errors.js';
import { loadClassifier } from '../../src/models/index.js';
import { exportOnnx } from '../../src/models/onnx/from-layers.js';
import { type OnnxModel, readOnnx, writeOnnx } from '../../src/models/onnx/graph.js';
import { executeGraph } from '../../src/models/onnx/network.js';
import {
  maxDiff,
  type OperatorCase,
  oneNode,
  random,
  SHARED_OPERATOR_CASES,
} from './onnx-helpers.js';

const root = packageRoot();
const dir = mkdtempSync(path.join(tmpdir(), 'parry-onnx-'));
const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 16);

/** Logits of `bytes` on NHWC `x` through ONNX Runtime (NCHW input, as exported). */
async function ortLogits(
  bytes: Uint8Array,
  x: Float32Array,
  nhwc: number[],
): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const [n, h, w, c] = nhwc;
    const nchw = tf.tidy(() => tf.transpose(tf.tensor(x, nhwc), [0, 3, 1, 2]).dataSync());
    const feeds = {
      [session.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(nchw), [n, c, h, w]),
    };
    const out = await session.run(feeds);
    return out[session.outputNames[0]].data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('ONNX export and import', () => {
  it.each(['fmnist-cnn-small', 'fmnist-mlp', 'fmnist-cnn-ibp'])(
    '%s: the exported ONNX gives the tfjs logits in parry and in ONNX Runtime',
    async (name) => {
      const tfjs = await loadClassifier(path.join(root, 'models', name));
      const bytes = writeOnnx(exportOnnx(tfjs));
      const file = path.join(dir, `${name}.onnx`);
      writeFileSync(file, bytes);
      const onnx = await loadClassifier(file);
      expect(onnx.format).toBe('onnx');
      expect(onnx.inputShape).toEqual(tfjs.inputShape);
      expect(onnx.numClasses).toBe(10);
      expect(onnx.bounds).toEqual(tfjs.bounds);
      const x = tf.tensor(data.x, data.shape);
      const want = tf.tidy(() => tfjs.logits(x).dataSync());
      const got = tf.tidy(() => onnx.logits(x).dataSync());
      expect(maxDiff(got, want)).toBeLessThan(1e-4);
      expect(maxDiff(await ortLogits(bytes, data.x, data.shape), want)).toBeLessThan(1e-4);
      // Input gradients of the cross-entropy agree too.
      const labels = tf.tensor1d(data.labels, 'int32');
      const grad = (m: typeof tfjs) =>
        tf.tidy(() =>
          tf
            .grad((z: tf.Tensor) =>
              tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 10), m.logits(z)),
            )(x)
            .dataSync(),
        );
      expect(maxDiff(grad(onnx), grad(tfjs))).toBeLessThan(1e-5);
      tf.dispose([x, labels]);
      tfjs.dispose();
      onnx.dispose();
    },
    60_000,
  );

  it('a malformed file and an unknown operator are one-line errors that name them', async () => {
    const bad = path.join(dir, 'bad.onnx');
    writeFileSync(bad, Uint8Array.from([0x08, 0xff, 0xff, 0xff]));
    await expect(loadClassifier(bad)).rejects.toThrow(/bad\.onnx is not an ONNX model/);
    await expect(loadClassifier(path.join(dir, 'missing.onnx'))).rejects.toThrow(/cannot read/);
    const tfjs = await loadClassifier(path.join(root, 'models', 'fmnist-mlp'));
    const model = exportOnnx(tfjs);
    tfjs.dispose();
    model.graph.nodes[1].opType = 'Hardmax';
    const odd = path.join(dir, 'odd.onnx');
    writeFileSync(odd, writeOnnx(model));
    const err = await loadClassifier(odd).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ParryError);
    expect((err as ParryError).code).toBe('UNSUPPORTED');
    expect((err as ParryError).message).toMatch(/no rule for ONNX operator Hardmax/);
  });

  it.each(['tfjs', 'ort'] as const)(
    'a final Softmax (behind an Identity) is replaced, so logits are logits (engine %s)',
    async (engine) => {
      const tfjs = await loadClassifier(path.join(root, 'models', 'fmnist-mlp'), { engine });
      const model = exportOnnx(tfjs);
      const out = model.graph.outputs[0].name;
      model.graph.nodes.push(
        {
          opType: 'Softmax',
          name: 'p',
          domain: '',
          inputs: [out],
          outputs: ['probs'],
          attributes: { axis: -1 },
        },
        {
          opType: 'Identity',
          name: 'i',
          domain: '',
          inputs: ['probs'],
          outputs: ['y'],
          attributes: {},
        },
      );
      model.graph.outputs[0] = { ...model.graph.outputs[0], name: 'y' };
      const file = path.join(dir, `softmax-${engine}.onnx`);
      writeFileSync(file, writeOnnx(model));
      const onnx = await loadClassifier(file, { engine });
      expect(onnx.outputWasSoftmax).toBe(true);
      expect(onnx.engine?.name ?? 'tfjs').toBe(engine);
      expect(tfjs.outputWasSoftmax).toBe(false);
      const x = tf.tensor(data.x, data.shape);
      const want = tf.tidy(() => tfjs.logits(x).dataSync());
      const got = tf.tidy(() => onnx.logits(x).dataSync());
      expect(maxDiff(got, want)).toBeLessThan(1e-4);
      // The written file itself still ends in Softmax: probabilities in ONNX Runtime.
      const probs = await ortLogits(writeOnnx(model), data.x, data.shape);
      expect(Math.abs(probs.slice(0, 10).reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-5);
      x.dispose();
      tfjs.dispose();
      onnx.dispose();
    },
  );
});

describe('ONNX operators against ONNX Runtime', () => {
  const cases: OperatorCase[] = [
    ...SHARED_OPERATOR_CASES,
    [
      'conv asymmetric pads, dilation 2',
      'Conv',
      { pads: [1, 0, 2, 1], dilations: [2, 2] },
      { w: [[5, 4, 3, 3], random(180, 3)] },
    ],
    ['average pool', 'AveragePool', { kernel_shape: [2, 2], strides: [2, 2] }, {}],
    ['broadcast add', 'Add', {}, { c: [[4, 1, 1], random(4, 6)] }],
    ['broadcast mul', 'Mul', {}, { c: [[1, 9], random(9, 7)] }],
  ];
  it.each(cases)('%s', async (_, op, attributes, weights) => {
    const model = oneNode(op, attributes as OnnxModel['graph']['nodes'][0]['attributes'], weights);
    const bytes = writeOnnx(model);
    const x = random(2 * 4 * 9 * 9, 42);
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ x: new ort.Tensor('float32', x, [2, 4, 9, 9]) });
    await session.release();
    const want = out.y;
    const parsed = readOnnx(bytes, `${op}.onnx`);
    const got = tf.tidy(() => {
      const values = new Map<string, tf.Tensor>(
        [...parsed.graph.initializers.values()].map((t) => [t.name, tf.tensor(t.data, t.dims)]),
      );
      values.set('x', tf.tensor(x, [2, 4, 9, 9]));
      return executeGraph(parsed.graph, values, 'y');
    });
    expect(got.shape).toEqual(want.dims);
    expect(maxDiff(got.dataSync(), want.data as Float32Array)).toBeLessThan(1e-5);
    got.dispose();
  });
});

describe('a PyTorch-exported model', () => {
  it('reproduces the logits torch recorded when it exported the file', async () => {
    const fixture = path.join(root, 'test', 'fixtures', 'torch-tiny');
    const expected = JSON.parse(readFileSync(path.join(fixture, 'expected.json'), 'utf8')) as {
      input_nchw: number[];
      shape: number[];
      logits: number[];
    };
    const model = await loadClassifier(fixture); // the directory: model.onnx and parry.json
    expect(model.format).toBe('onnx');
    const [n, c, h, w] = expected.shape;
    expect(model.inputShape).toEqual([h, w, c]);
    const x = tf.tidy(() =>
      tf.transpose(tf.tensor(expected.input_nchw, [n, c, h, w]), [0, 2, 3, 1]),
    );
    const got = tf.tidy(() => model.logits(x).dataSync());
    expect(maxDiff(got, expected.logits)).toBeLessThan(1e-5);
    const bytes = readFileSync(path.join(fixture, 'model.onnx'));
    expect(
      maxDiff(await ortLogits(bytes, x.dataSync() as Float32Array, x.shape), expected.logits),
    ).toBeLessThan(1e-5);
    x.dispose();
    model.dispose();
  });
});
