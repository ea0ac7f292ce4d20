/**
 * STRIP: the mean blend entropy (and the detector's score, its negation) against an independent
 * computation on a hand-made linear model, and a planted one-pixel backdoor whose triggered inputs
 * STRIP flags at a 5% false rejection of clean ones; seeded overlays, no leaks from fit to
 * dispose, built by name from the registry.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  createDetector,
  StripDetector,
  stripEntropy,
} from '../../../src/defenses/detection/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { TfjsClassifier } from '../../../src/models/index.js';

/** A dense classifier on [s, s, 1] inputs with the given kernel ([s·s, k]) and bias. */
function linear(s: number, kernel: number[], bias: number[]): TfjsClassifier {
  const k = bias.length;
  const dense = tfl.layers.dense({ units: k, inputShape: [s * s] });
  const lm = tfl.sequential({ layers: [tfl.layers.flatten({ inputShape: [s, s, 1] }), dense] });
  dense.setWeights([tf.tensor2d(kernel, [s * s, k]), tf.tensor1d(bias)]);
  return new TfjsClassifier(lm);
}

describe('STRIP', () => {
  it('mean blend entropy equals an independent computation; the score is its negation', async () => {
    const kernel = [1, -1, 0.5, 2, -0.5, 0, 3, 1, 0, -2, 1, 1];
    const bias = [0.1, -0.3, 0.2];
    const model = linear(2, kernel, bias);
    const x = [
      [0.2, 0.9, 0.4, 0.0],
      [0.7, 0.1, 0.8, 0.5],
    ];
    const overlays = [
      [0.5, 0.5, 0.1, 0.9],
      [0.0, 0.3, 0.6, 0.2],
      [0.9, 0.9, 0.9, 0.9],
    ];
    // Independent: clip(x + c) to [0, 1], dense layer, softmax, −Σ p ln p, mean over overlays.
    const expected = x.map((xi) => {
      let total = 0;
      for (const c of overlays) {
        const v = xi.map((a, p) => Math.min(1, Math.max(0, a + c[p])));
        const z = bias.map((b, k) => b + v.reduce((s, vp, p) => s + vp * kernel[p * 3 + k], 0));
        const m = Math.max(...z);
        const e = z.map((zk) => Math.exp(zk - m));
        const sum = e.reduce((a, b) => a + b);
        total -= e.reduce((s, ek) => s + (ek / sum) * Math.log(ek / sum), 0);
      }
      return total / overlays.length;
    });
    const xT = tf.tensor4d(x.flat(), [2, 2, 2, 1]);
    const overlaysT = tf.tensor4d(overlays.flat(), [3, 2, 2, 1]);
    const got = tf.tidy(() => stripEntropy(model, xT, overlaysT).dataSync());
    // Through the detector: N = all three overlays (drawn in a seeded order; the mean ignores it).
    const det = new StripDetector({ samples: 3, seed: 7 });
    await det.fit(model, overlaysT);
    const scores = det.score(xT);
    expected.forEach((h, i) => {
      expect(Math.abs(got[i] - h)).toBeLessThan(1e-5);
      expect(Math.abs(scores[i] + h)).toBeLessThan(1e-5);
    });
    det.dispose();
    tf.dispose([xT, overlaysT]);
    model.dispose();
  });

  it('flags inputs carrying a planted trigger at a 5% false rejection of clean ones', async () => {
    // 4 classes on 6×6 images: class k brightens quarter k; pixel 35 (the corner) is the trigger.
    const s = 6;
    const kernel = new Array(s * s * 4).fill(0);
    for (let p = 0; p < s * s - 1; p++) {
      const q = (p % s < s / 2 ? 0 : 1) + (Math.floor(p / s) < s / 2 ? 0 : 2);
      kernel[p * 4 + q] = 1.5;
    }
    kernel[(s * s - 1) * 4 + 0] = 60;
    const model = linear(s, kernel, [0, 0, 0, 0]);
    const rng = new Rng(5);
    const images = (n: number, trigger: boolean) => {
      const v = new Float32Array(n * s * s);
      for (let i = 0; i < n; i++) {
        for (let p = 0; p < s * s - 1; p++) v[i * s * s + p] = 0.5 * rng.next();
        v[i * s * s + s * s - 1] = trigger ? 1 : 0;
      }
      return tf.tensor4d(v, [n, s, s, 1]);
    };
    const fitX = images(200, false);
    const calX = images(200, false);
    const cleanX = images(200, false);
    const triggered = images(100, true);
    const det = new StripDetector({ samples: 20, seed: 3 });
    await det.fit(model, fitX);
    const before = tf.memory().numTensors;
    det.calibrate(calX, 0.05);
    const flaggedTriggered = det.detect(triggered).filter(Boolean).length / 100;
    const flaggedClean = det.detect(cleanX).filter(Boolean).length / 200;
    expect(flaggedTriggered).toBeGreaterThanOrEqual(0.95);
    expect(flaggedClean).toBeLessThan(0.12);
    expect(tf.memory().numTensors).toBe(before);
    // Seeded overlays: a second detector with the same seed scores the same.
    const again = new StripDetector({ samples: 20, seed: 3 });
    await again.fit(model, fitX);
    expect(again.score(triggered)).toEqual(det.score(triggered));
    again.dispose();
    // The seed picks the overlays: another seed draws other ones.
    const other = new StripDetector({ samples: 20, seed: 4 });
    await other.fit(model, fitX);
    expect(other.score(triggered)).not.toEqual(det.score(triggered));
    other.dispose();
    det.dispose();
    tf.dispose([fitX, calX, cleanX, triggered]);
    model.dispose();
  });

  it('frees what it holds: no leak from fit to dispose; scoring after dispose needs fit', async () => {
    const model = linear(2, [1, 0, 0, 1, -1, 0, 0, -1], [0, 0]);
    const cleanX = tf.randomUniform([30, 2, 2, 1], 0, 1, 'float32', 11);
    const before = tf.memory().numTensors;
    const det = new StripDetector({ samples: 10, seed: 2 });
    await det.fit(model, cleanX);
    await det.fit(model, cleanX); // a refit frees the previous overlays
    det.calibrate(cleanX, 0.1);
    det.detect(cleanX);
    det.scoreTensor(cleanX).dispose();
    det.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(() => det.score(cleanX)).toThrow(/strip: call fit\(\) first/);
    cleanX.dispose();
    model.dispose();
  });

  it('is built by name from the registry, without a gradient', () => {
    const d = createDetector('strip', 4);
    expect(d).toBeInstanceOf(StripDetector);
    expect(d.gradient).toBe('none');
    expect(() => new StripDetector({ samples: 0 })).toThrow(/samples/);
  });
});
