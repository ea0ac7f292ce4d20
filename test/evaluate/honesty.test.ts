/**
 * Honesty checks: each one's pass and warn (and skip) path on constructed numbers, and the two
 * model measurements on constructed models: a gradient-masked model (a quantiser in front of a
 * linear layer, as in test/attacks/auto.test.ts) must warn on gradients, a linear model must not.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/index.js';
import {
  blackVsWhiteCheck,
  gradientHealth,
  gradientsCheck,
  monotoneCheck,
  moreStepsCheck,
  noiseRobust,
  randomNoiseCheck,
  unboundedCheck,
} from '../../src/evaluate/honesty.js';
import type { AttackCell } from '../../src/evaluate/results.js';
import { LinearClassifier, MaskedClassifier, values } from '../attacks/helpers.js';

const N = 20;
const data: Dataset = {
  name: 'honesty-test',
  x: Float32Array.from(values(N * 36, 11, 0.2, 0.8)),
  shape: [N, 6, 6, 1],
  labels: Int32Array.from(values(N, 3), (v) => Math.floor(v * 4)),
  numClasses: 4,
};
const linear = new LinearClassifier(
  [6, 6, 1],
  Array.from({ length: 36 }, (_, i) => values(4, 100 + i, -1, 1)),
  [0, 0, 0, 0],
);

const cell = (
  attack: string,
  norm: 'linf' | 'l2',
  eps: number,
  robustAccuracy: number,
  whiteBox = true,
) => ({ attack, kind: attack, norm, eps, robustAccuracy, whiteBox }) as AttackCell;

describe('honesty checks', () => {
  it('unbounded-eps passes at <= 1% and warns above', () => {
    const m = { n: 100, eps: 1, steps: 20 };
    expect(unboundedCheck({ ...m, robustAccuracy: 0.01 }).status).toBe('pass');
    const warn = unboundedCheck({ ...m, robustAccuracy: 0.03 });
    expect(warn.status).toBe('warn');
    expect(warn.detail).toMatch(/PGD-20 at L∞ eps 1 .* leaves 3\.0% accuracy on 100 examples/);
    expect(warn.values.accuracy).toBe(0.03);
  });

  it('monotone-eps tolerates one example and warns beyond', () => {
    const curve = (a: number, b: number) => [
      cell('pgd', 'linf', 0.05, a),
      cell('pgd', 'linf', 0.1, b),
    ];
    expect(monotoneCheck(curve(0.5, 0.4), 100).status).toBe('pass');
    expect(monotoneCheck(curve(0.4, 0.41), 100).status).toBe('pass');
    const warn = monotoneCheck([...curve(0.4, 0.43), cell('fgsm', 'linf', 0.05, 0.6)], 100);
    expect(warn.status).toBe('warn');
    expect(warn.values.largestRise).toBeCloseTo(0.03, 12);
    expect(warn.detail).toMatch(/pgd \(linf\) 40\.0% at eps 0\.05 → 43\.0% at eps 0\.1/);
    expect(monotoneCheck([cell('pgd', 'linf', 0.1, 0.5)], 100).status).toBe('skip');
  });

  it('more-steps warns when the stronger PGD lowers the worst case by more than 2 points', () => {
    const m = {
      n: 50,
      eps: 0.1,
      steps: 100,
      restarts: 2,
      strong: 0.3,
      bestWhiteBox: { attack: 'pgd', accuracy: 0.36 },
    };
    expect(moreStepsCheck({ ...m, before: 0.34, after: 0.32 }).status).toBe('pass');
    const warn = moreStepsCheck({ ...m, before: 0.34, after: 0.3 });
    expect(warn.status).toBe('warn');
    expect(warn.values.drop).toBeCloseTo(0.04, 12);
    expect(warn.detail).toMatch(/PGD-100 with 2 restarts .* from 34\.0% to 30\.0%/);
  });

  it('black-vs-white warns when a black-box attack beats the best white-box one by > 2 points', () => {
    const white = [cell('fgsm', 'linf', 0.1, 0.5), cell('pgd', 'linf', 0.1, 0.35)];
    expect(blackVsWhiteCheck([...white, cell('square', 'linf', 0.1, 0.34, false)]).status).toBe(
      'pass',
    );
    const warn = blackVsWhiteCheck([
      ...white,
      cell('square', 'linf', 0.1, 0.3, false),
      cell('square', 'l2', 1, 0.2, false),
    ]);
    expect(warn.status).toBe('warn');
    expect(warn.values.excess).toBeCloseTo(0.05, 12);
    expect(warn.detail).toMatch(/square 30\.0% vs pgd 35\.0% at linf eps 0\.1/);
    expect(blackVsWhiteCheck(white).status).toBe('skip');
  });

  it('random-noise warns when an attack leaves more accuracy than noise of its size', () => {
    const noise = [{ norm: 'linf' as const, eps: 0.1, robustAccuracy: 0.8 }];
    expect(
      randomNoiseCheck(noise, [
        cell('pgd', 'linf', 0.1, 0.3),
        cell('square', 'linf', 0.1, 0.8, false),
      ]).status,
    ).toBe('pass');
    const warn = randomNoiseCheck(noise, [
      cell('pgd', 'linf', 0.1, 0.3),
      cell('square', 'linf', 0.1, 0.85, false),
    ]);
    expect(warn.status).toBe('warn');
    expect(warn.detail).toMatch(/square 85\.0% vs noise 80\.0%/);
    expect(randomNoiseCheck(noise, [cell('pgd', 'l2', 1, 0.3)]).status).toBe('skip');
  });

  it('gradients: a gradient-masked model warns, a linear one passes', async () => {
    const before = tf.memory().numTensors;
    const masked = await gradientHealth(new MaskedClassifier(), data, 8);
    const plain = await gradientHealth(linear, data, 8);
    expect(tf.memory().numTensors).toBe(before + 1); // the masked model's kept weights
    expect(masked).toEqual({ n: N, zero: N, nonFinite: 0 });
    expect(plain).toEqual({ n: N, zero: 0, nonFinite: 0 });
    const warn = gradientsCheck(masked);
    expect(warn.status).toBe('warn');
    expect(warn.detail).toMatch(/100\.0% of 20 examples have an all-zero \(20\)/);
    expect(gradientsCheck(plain).status).toBe('pass');
    expect(gradientsCheck({ n: 20, zero: 1, nonFinite: 1 }).status).toBe('pass');
    expect(gradientsCheck({ n: 20, zero: 2, nonFinite: 1 }).status).toBe('warn');
    // Behind BPDA the status follows the gradient the attacks use; the masked one is reported.
    const bpda = gradientsCheck(plain, masked);
    expect(bpda.status).toBe('pass');
    expect(bpda.detail).toMatch(/as is \(no BPDA\): 100\.0%/);
  });

  it('random noise: eps 0 changes nothing; a seed gives the same draw; large noise breaks', async () => {
    const logits = tf.tidy(() => tf.argMax(linear.logits(tf.tensor(data.x, data.shape)), 1));
    const clean = Array.from(await logits.data());
    logits.dispose();
    const correct = clean.map((p, i): number => (p === data.labels[i] ? 1 : 0));
    const before = tf.memory().numTensors;
    for (const norm of ['linf', 'l2'] as const) {
      expect(await noiseRobust(linear, data, clean, norm, 0, 1, 8)).toEqual(correct);
      const a = await noiseRobust(linear, data, clean, norm, 0.5, 3, 8);
      expect(await noiseRobust(linear, data, clean, norm, 0.5, 3, 8)).toEqual(a);
      const big = await noiseRobust(linear, data, clean, norm, norm === 'linf' ? 1 : 6, 3, 8);
      expect(big.reduce((s, v) => s + v, 0)).toBeLessThan(correct.reduce((s, v) => s + v, 0));
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
