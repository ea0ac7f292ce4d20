/** Models, data and guard files shared by the service tests. */
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { firstExamples, loadDataset } from '../../src/data/index.js';
import { loadClassifier, type TfjsClassifier } from '../../src/models/index.js';
import { type GuardConfigInput, parseGuardConfig } from '../../src/serve/guard-config.js';
import type { ServedModel } from '../../src/serve/server.js';

export const MLP = 'models/fmnist-mlp';

export function loadMlp(): Promise<TfjsClassifier> {
  return loadClassifier(MLP);
}

/** The first n test images of the bundled Fashion-MNIST subset: values [n, 28, 28, 1] and labels. */
export function testImages(n: number) {
  const d = firstExamples(loadDataset('fashion-mnist-subset', 'test', { seed: 0 }), n);
  return { x: d.x, labels: Array.from(d.labels), size: 28 * 28 };
}

/** Example i of a flat batch as the nested [28][28][1] array a client sends. */
export function nested(x: Float32Array, i: number, h = 28, w = 28): number[][][] {
  return Array.from({ length: h }, (_, r) =>
    Array.from({ length: w }, (_, c) => [x[i * h * w + r * w + c]]),
  );
}

/** Softmax of the model's logits for rows of x, computed here with tfjs ops (float32). */
export function referenceProbabilities(
  model: ServedModel,
  x: Float32Array,
  rows: number,
): number[][] {
  const t = tf.tensor(x, [rows, ...model.inputShape]);
  const p = tf.tidy(() => tf.softmax(model.logits(t)));
  const values = p.arraySync() as number[][];
  tf.dispose([t, p]);
  return values;
}

/** A guard file with quotas loose enough not to get in a test's way, merged with `extra`. */
export function guard(extra: GuardConfigInput = {}) {
  const g = (extra.guards ?? {}) as Record<string, unknown>;
  return parseGuardConfig({
    ...extra,
    guards: {
      quota: { rate: 1e6, burst: 1e6, perDay: 1e9 },
      perAddress: { max: 1e6, windowMs: 60_000 },
      ...g,
    },
  });
}

/**
 * A tiny classifier over [2, 2, 1] inputs with `numClasses` classes whose label is
 * round((numClasses − 1)·x₀) (x₀ the first value): logits_c = −(k·x₀ − c)². It records the batch
 * sizes it is called with.
 */
export class ToyModel implements ServedModel {
  readonly inputShape = [2, 2, 1];
  readonly bounds: [number, number] = [0, 1];
  readonly batches: number[] = [];
  readonly classNames: string[];

  constructor(readonly numClasses = 8) {
    this.classNames = Array.from({ length: numClasses }, (_, c) => `class-${c}`);
  }

  logits(x: tf.Tensor): tf.Tensor2D {
    this.batches.push(x.shape[0]);
    return tf.tidy(() => {
      const first = tf.slice(tf.reshape(x, [x.shape[0], 4]), [0, 0], [-1, 1]);
      const classes = tf.reshape(tf.range(0, this.numClasses, 1, 'float32'), [1, this.numClasses]);
      const d = tf.sub(tf.mul(first, this.numClasses - 1), classes);
      return tf.neg(tf.square(d)) as tf.Tensor2D;
    });
  }
}

/** A [2, 2, 1] example for ToyModel with first value v (the rest 0). */
export const toyInput = (v: number) => [
  [[v], [0]],
  [[0], [0]],
];

/** Every value of `actual` within 10^-digits/2 of `expected`'s, same length. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  digits = 6,
): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) expect(actual[i]).toBeCloseTo(expected[i], digits);
}
