import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { ARCHITECTURES, buildArchitecture } from '../../src/models/index.js';
import { caught } from './tmp.js';

describe('architectures', () => {
  it('registry lists each architecture once with a description', () => {
    expect(ARCHITECTURES.map((a) => a.name)).toEqual(['mlp', 'cnn-small', 'cnn-tiny', 'cnn-cifar']);
    for (const a of ARCHITECTURES) expect(a.description.length).toBeGreaterThan(10);
  });

  it.each([
    ['mlp', [28, 28, 1], 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10],
    ['cnn-small', [28, 28, 1], 320 + 18496 + 9216 * 128 + 128 + 1290],
    ['cnn-tiny', [28, 28, 1], 272 + 8224 + 3200 * 100 + 100 + 1010],
    ['cnn-cifar', [32, 32, 3], 896 + 9248 + 18496 + 36928 + 2304 * 256 + 256 + 2570],
  ])('%s: input %j, %i parameters, logits out (linear last layer)', (name, inputShape, params) => {
    const m = buildArchitecture(name);
    expect(m.inputs[0].shape).toEqual([null, ...inputShape]);
    expect(m.outputs[0].shape).toEqual([null, 10]);
    expect(m.countParams()).toBe(params);
    const last = m.layers[m.layers.length - 1].getConfig();
    expect(last.activation).toBe('linear');
    expect(m.getUserDefinedMetadata()).toEqual({ parry: { arch: name, seed: 0 } });
    m.dispose();
  });

  it('the same seed builds the same weights, another seed other weights, every layer its own', () => {
    const read = (seed: number) => {
      const m = buildArchitecture('cnn-small', { seed, inputShape: [8, 8, 1], numClasses: 3 });
      const w = m.getWeights().map((t) => Array.from(t.dataSync()));
      m.dispose();
      return w;
    };
    const a = read(7);
    expect(read(7)).toEqual(a);
    const b = read(8);
    expect(b[0]).not.toEqual(a[0]);
    // conv1 and conv2 kernels do not start from the same random stream
    expect(a[2].slice(0, 9)).not.toEqual(a[0].slice(0, 9));
  });

  it('dropout adds a Dropout layer before every Dense layer and is off in inference', () => {
    const m = buildArchitecture('mlp', { dropout: 0.5, inputShape: [4, 4, 1] });
    expect(m.layers.map((l) => l.getClassName())).toEqual([
      'Flatten',
      'Dropout',
      'Dense',
      'Dropout',
      'Dense',
      'Dropout',
      'Dense',
    ]);
    const x = tf.ones([2, 4, 4, 1]);
    const a = m.apply(x, { training: false }) as tf.Tensor;
    const b = m.apply(x, { training: false }) as tf.Tensor;
    expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
    tf.dispose([x, a, b]);
    m.dispose();
    const plain = buildArchitecture('cnn-cifar');
    expect(plain.layers.some((l) => l.getClassName() === 'Dropout')).toBe(false);
    plain.dispose();
  });

  it('options: inputShape and numClasses', () => {
    const m = buildArchitecture('cnn-cifar', { inputShape: [16, 16, 1], numClasses: 4 });
    expect(m.outputs[0].shape).toEqual([null, 4]);
    m.dispose();
  });

  it.each([
    [
      'resnet',
      {},
      "buildArchitecture: unknown architecture 'resnet' (known: mlp, cnn-small, cnn-tiny, cnn-cifar)",
    ],
    ['mlp', { dropout: 1 }, 'buildArchitecture: dropout must be in [0, 1), got 1'],
    ['mlp', { numClasses: 1 }, 'buildArchitecture: numClasses must be an integer >= 2, got 1'],
    ['mlp', { seed: -1 }, 'buildArchitecture: seed must be an integer in [0, 2^32), got -1'],
    [
      'cnn-small',
      { inputShape: [784] },
      'buildArchitecture: cnn-small needs inputShape [h, w, c], got [784]',
    ],
  ])('rejects %s with %j', async (name, opts, message) => {
    const e = await caught(() => buildArchitecture(name, opts));
    expect([e.code, e.message]).toEqual(['BAD_OPTION', message]);
  });

  it('rejects an input too small for the convolutions', async () => {
    const e = await caught(() => buildArchitecture('cnn-small', { inputShape: [4, 4, 1] }));
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toMatch('buildArchitecture: cnn-small cannot take inputShape [4,4,1]');
  });
});
