/** Tiny fixed-weight models whose attacks have closed forms. */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier, QueryClassifier } from '../../src/models/classifier.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';

/** logits = flatten(x)·W + b. W is `[d][k]` as nested arrays. */
export class LinearClassifier implements Classifier {
  readonly numClasses: number;
  private readonly w: tf.Tensor2D;
  private readonly b: tf.Tensor1D;

  constructor(
    readonly inputShape: number[],
    readonly weights: number[][],
    readonly bias: number[],
    readonly bounds: [number, number] = [0, 1],
  ) {
    this.numClasses = bias.length;
    this.w = tf.keep(tf.tensor2d(weights));
    this.b = tf.keep(tf.tensor1d(bias));
  }

  logits(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), this.w), this.b));
  }
}

/** Deterministic pseudo-random numbers in [lo, hi) for test inputs (LCG, no tfjs). */
export function values(n: number, seed: number, lo = 0, hi = 1): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(lo + ((hi - lo) * s) / 4294967296);
  }
  return out;
}

/** A two-class linear model on inputs [2, 3, 1] (d = 6) with distinct |w1 − w0| entries. */
export function twoClassModel(): LinearClassifier {
  const w0 = [0.5, -1.0, 0.25, 2.0, -0.75, 0.1];
  const w1 = [-0.3, 0.6, 1.25, -1.5, 0.5, -0.4];
  return new LinearClassifier(
    [2, 3, 1],
    w0.map((v, i) => [v, w1[i]]),
    [0.1, -0.1],
  );
}

let cnn: TfjsClassifier | undefined;
/** cnn-small on [8, 8, 1] with 3 classes, built once per test file. */
export function cnnModel(): TfjsClassifier {
  cnn ??= new TfjsClassifier(
    buildArchitecture('cnn-small', { inputShape: [8, 8, 1], numClasses: 3, seed: 1 }),
  );
  return cnn;
}

export function toArray(t: tf.Tensor): number[] {
  return Array.from(t.dataSync());
}

/**
 * A linear model as a plain data-in/data-out black box: it reads the input values and computes
 * softmax probabilities in float64 JS, so no gradient can flow through it. `labelsOnly` answers
 * one-hot top-1 labels instead (decision-only access). `calls` records the rows of every query.
 */
export function linearBlackBox(
  model: LinearClassifier,
  opts: { labelsOnly?: boolean } = {},
): QueryClassifier & { calls: number[] } {
  const calls: number[] = [];
  const d = model.weights.length;
  const k = model.numClasses;
  return {
    inputShape: model.inputShape,
    numClasses: k,
    bounds: model.bounds,
    calls,
    predict: async (x: tf.Tensor) => {
      const v = await x.data();
      const n = x.shape[0];
      calls.push(n);
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const z = model.bias.map((b, c) => {
          let s = b;
          for (let j = 0; j < d; j++) s += v[i * d + j] * model.weights[j][c];
          return s;
        });
        const m = Math.max(...z);
        if (opts.labelsOnly) {
          const top = z.indexOf(m);
          out.push(...z.map((_, c) => (c === top ? 1 : 0)));
        } else {
          const e = z.map((t) => Math.exp(t - m));
          const total = e.reduce((a, b) => a + b, 0);
          out.push(...e.map((t) => t / total));
        }
      }
      return tf.tensor2d(out, [n, k]);
    },
  };
}

/**
 * A linear 4-class model behind a quantiser: logits = W·round(8x)/8. tf.round has a zero
 * gradient, so every gradient attack sees a flat loss (gradient masking); only a black-box search
 * can break it.
 */
export class MaskedClassifier implements Classifier {
  readonly inputShape = [6, 6, 1];
  readonly numClasses = 4;
  readonly bounds: [number, number] = [0, 1];
  private readonly w = tf.keep(tf.tensor2d(values(36 * 4, 5, -1, 1), [36, 4]));

  logits(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const q = tf.div(tf.round(tf.mul(x, 8)), 8);
      return tf.matMul(tf.reshape(q, [x.shape[0], -1]), this.w);
    });
  }
}
