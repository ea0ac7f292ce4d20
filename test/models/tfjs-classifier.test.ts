import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/engine/backend.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';
import { caught } from './tmp.js';

afterAll(() => initBackend());

describe('TfjsClassifier', () => {
  it('reads inputShape and numClasses from the model and describes it', () => {
    const c = new TfjsClassifier(buildArchitecture('cnn-small', { numClasses: 7 }));
    expect(c.inputShape).toEqual([28, 28, 1]);
    expect(c.numClasses).toBe(7);
    expect(c.bounds).toEqual([0, 1]);
    const info = c.info();
    expect(info.format).toBe('layers-model');
    expect(info.params).toBe(320 + 18496 + 9216 * 128 + 128 + 128 * 7 + 7);
    expect(info.layers.map((l) => [l.name, l.className, l.outputShape, l.params])).toEqual([
      ['conv1', 'Conv2D', [null, 26, 26, 32], 320],
      ['conv2', 'Conv2D', [null, 24, 24, 64], 18496],
      ['pool', 'MaxPooling2D', [null, 12, 12, 64], 0],
      ['flatten', 'Flatten', [null, 9216], 0],
      ['dense1', 'Dense', [null, 128], 9216 * 128 + 128],
      ['logits', 'Dense', [null, 7], 128 * 7 + 7],
    ]);
    c.dispose();
  });

  it('normalises per channel inside logits: logits(x) = model((x - mean) / std)', async () => {
    const model = buildArchitecture('mlp', { inputShape: [3, 3, 2], seed: 4 });
    const c = new TfjsClassifier(model, { mean: [0.5, 0.25], std: [0.2, 0.4] });
    const x = tf.randomUniform([2, 3, 3, 2], 0, 1, 'float32', 9);
    const z = tf.div(tf.sub(x, tf.tensor1d([0.5, 0.25])), tf.tensor1d([0.2, 0.4]));
    const want = (await (model.apply(z, { training: false }) as tf.Tensor).array()) as number[][];
    const got = (await c.logits(x).array()) as number[][];
    got.flat().forEach((v, i) => {
      expect(v).toBeCloseTo(want.flat()[i], 5);
    });
    c.dispose();
  });

  it('rejects bad options', async () => {
    const model = buildArchitecture('mlp', { inputShape: [2, 2, 3] });
    const cases: [object, string][] = [
      [{ mean: [0, 0] }, 'TfjsClassifier: mean has 2 values for 3 channels'],
      [{ std: [1, 0, 1] }, 'TfjsClassifier: std must be finite and > 0, got [1,0,1]'],
      [{ bounds: [1, 0] }, 'TfjsClassifier: bounds must be finite with low < high, got [1,0]'],
      [{ classNames: ['a'] }, 'TfjsClassifier: 1 classNames for 10 classes'],
      [{ inputShape: [4, 3] }, "TfjsClassifier: inputShape [4,3] does not fit the model's [2,2,3]"],
    ];
    const before = tf.memory().numTensors;
    for (const [opts, message] of cases) {
      const e = await caught(() => new TfjsClassifier(model, { mean: [0.5], ...opts }));
      expect([e.code, e.message]).toEqual(['BAD_OPTION', message]);
    }
    expect(tf.memory().numTensors).toBe(before); // no normalisation constant left behind
    model.dispose();
  });
});

describe('input checks', () => {
  const c = new TfjsClassifier(buildArchitecture('mlp'), { bounds: [0, 1] });

  it('checkInput / logits reject a shape that does not match, naming both shapes', async () => {
    const x = tf.zeros([5, 28, 28, 3]);
    for (const f of [
      () => c.checkInput(x),
      () => c.logits(x),
      () => c.checkInput([5, 28, 28, 3]),
    ]) {
      const e = await caught(f);
      expect([e.code, e.message]).toEqual([
        'BAD_INPUT',
        "classifier: input shape [5,28,28,3] does not match the model's [28,28,1]",
      ]);
    }
    const e = await caught(() => c.checkInput(tf.zeros([28, 28, 1])));
    expect(e.message).toBe(
      "classifier: input shape [28,28,1] does not match the model's [28,28,1]",
    );
    x.dispose();
  });

  it('validateInput rejects NaN/Inf and values outside bounds, accepts valid input', async () => {
    const good = tf.fill([2, 28, 28, 1], 0.5);
    await expect(c.validateInput(good)).resolves.toBeUndefined();
    const values = new Float32Array(2 * 784).fill(0.5);
    values[10] = Number.NaN;
    values[20] = Number.POSITIVE_INFINITY;
    const nan = tf.tensor4d(values, [2, 28, 28, 1]);
    let e = await caught(() => c.validateInput(nan));
    expect([e.code, e.message]).toEqual([
      'BAD_INPUT',
      'classifier: input has 2 NaN/Inf value(s) (first at flat index 10: NaN)',
    ]);
    values[10] = 0.5;
    values[20] = 0.5;
    values[30] = 1.25;
    values[31] = -0.5;
    const out = tf.tensor4d(values, [2, 28, 28, 1]);
    e = await caught(() => c.validateInput(out));
    expect([e.code, e.message]).toEqual([
      'BAD_INPUT',
      'classifier: input has 2 value(s) outside bounds [0,1] (first at flat index 30: 1.25)',
    ]);
    e = await caught(() => c.validateInput(tf.zeros([1, 28, 28])));
    expect(e.code).toBe('BAD_INPUT');
    tf.dispose([good, nan, out]);
  });
});

describe('gradients', () => {
  /** One-sided differences of sum(logits) at every coordinate of x, in float32. */
  function differences(c: TfjsClassifier, x: tf.Tensor, h: number) {
    const base = x.dataSync() as Float32Array;
    const f = (values: Float32Array) =>
      tf.tidy(() => tf.sum(c.logits(tf.tensor(values, x.shape))).dataSync()[0]);
    const f0 = f(base);
    const forward = new Float64Array(base.length);
    const backward = new Float64Array(base.length);
    for (let i = 0; i < base.length; i++) {
      const plus = Float32Array.from(base);
      const minus = Float32Array.from(base);
      plus[i] += h;
      minus[i] -= h;
      forward[i] = (f(plus) - f0) / (plus[i] - base[i]);
      backward[i] = (f0 - f(minus)) / (base[i] - minus[i]);
    }
    return { forward, backward };
  }

  // A ReLU net is piecewise linear: when no ReLU kink lies within h of x along a coordinate,
  // the forward and backward differences agree and both equal the derivative (up to float32
  // noise). With 512 units some coordinates do have a kink that close (for this seed one unit's
  // pre-activation is 7e-5), and there the derivative is one of several slopes: those
  // coordinates are detected by forward != backward and skipped. Every kink-free coordinate
  // must match tightly, and at least half of them must be kink-free so the test cannot pass
  // vacuously (a wrong factor such as a missing 1/std fails everywhere).
  for (const backend of ['wasm', 'cpu']) {
    it(`d sum(logits) / dx of the normalised mlp matches finite differences on ${backend}`, async () => {
      await initBackend(backend);
      const model = buildArchitecture('mlp', { inputShape: [4, 4, 2], seed: 12 });
      const c = new TfjsClassifier(model, { mean: [0.5, 0.4], std: [0.3, 0.2] });
      const x = tf.randomUniform([4, 4, 4, 2], 0, 1, 'float32', 3);
      const grad = tf.grad((z: tf.Tensor) => tf.sum(c.logits(z)))(x);
      expect(grad.shape).toEqual(x.shape);
      const analytic = grad.dataSync();
      const { forward, backward } = differences(c, x, 3e-4);
      const scale = Math.max(...Array.from(analytic, Math.abs));
      expect(scale).toBeGreaterThan(0.1);
      const tol = 2e-3 * scale; // float32 noise of sum(logits) (~1e-6) over a step of 3e-4
      let smooth = 0;
      for (let i = 0; i < analytic.length; i++) {
        if (Math.abs(forward[i] - backward[i]) >= tol) continue;
        smooth++;
        const central = (forward[i] + backward[i]) / 2;
        expect(Math.abs(analytic[i] - central), `coordinate ${i}`).toBeLessThan(tol);
      }
      expect(smooth).toBeGreaterThanOrEqual(0.5 * analytic.length);
      tf.dispose([x, grad]);
      c.dispose();
    });
  }
});

describe('memory', () => {
  it('logits + input gradient leak no tensors over 20 calls (layers and normalisation)', async () => {
    await initBackend();
    const c = new TfjsClassifier(buildArchitecture('mlp', { seed: 1 }), {
      mean: [0.5],
      std: [0.5],
    });
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 1);
    const step = () =>
      tf.tidy(() => {
        c.logits(x);
        tf.grad((z: tf.Tensor) => tf.sum(c.logits(z)))(x);
      });
    step(); // warm-up: lets tfjs create whatever it caches once
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    const held = tf.memory().numTensors;
    c.dispose();
    // dispose frees the 6 weights and the 2 normalisation constants
    expect(tf.memory().numTensors).toBe(held - 8);
    x.dispose();
  });
});
