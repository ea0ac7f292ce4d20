/** Affine classifiers with wide, configurable bounds, for minimum-norm attacks' closed forms. */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../src/models/classifier.js';

/** logits = flatten(x)·W + b, W `[d][k]`, inputs in `bounds`. */
export class AffineClassifier implements Classifier {
  readonly numClasses: number;
  private readonly w: tf.Tensor2D;
  private readonly b: tf.Tensor1D;

  constructor(
    readonly inputShape: number[],
    readonly weights: number[][],
    readonly bias: number[],
    readonly bounds: [number, number] = [-10, 10],
  ) {
    this.numClasses = bias.length;
    this.w = tf.keep(tf.tensor2d(weights));
    this.b = tf.keep(tf.tensor1d(bias));
  }

  logits(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.add(tf.matMul(tf.reshape(x, [x.shape[0], -1]), this.w), this.b));
  }

  /** Logits of one flat example, in float64 JS. */
  logitsOf(x: number[]): number[] {
    return this.bias.map((b, k) => b + x.reduce((s, v, i) => s + v * this.weights[i][k], 0));
  }
}

/** Distances from x (flat) to each boundary {z_k = z_y}, k ≠ y, in L2 and L∞ (dual norm L1). */
export function boundaryDistances(
  model: AffineClassifier,
  x: number[],
  y: number,
): { l2: number; linf: number }[] {
  const z = model.logitsOf(x);
  const out: { l2: number; linf: number }[] = [];
  for (let k = 0; k < model.numClasses; k++) {
    if (k === y) continue;
    const w = model.weights.map((row) => row[k] - row[y]);
    const f = Math.abs(z[k] - z[y]);
    out.push({
      l2: f / Math.hypot(...w),
      linf: f / w.reduce((s, v) => s + Math.abs(v), 0),
    });
  }
  return out;
}
