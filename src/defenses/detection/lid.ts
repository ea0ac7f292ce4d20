/**
 * Local intrinsic dimensionality detector (Ma et al. 2018, "Characterizing adversarial subspaces
 * using local intrinsic dimensionality"). For every hidden layer l, the maximum-likelihood LID
 * estimate of an activation against a reference minibatch of clean activations,
 *   LID(x) = −( (1/k) Σ_{i=1..k} log(r_i(x) / r_k(x)) )⁻¹,
 * r_i the distance to the i-th nearest reference point; then a logistic regression on the
 * per-layer LID features, fitted with clean and Gaussian-noisy examples (label 0) and
 * adversarial examples (label 1). The paper draws a fresh minibatch per evaluation batch; here
 * one fixed reference minibatch (the first `referenceSize` clean fit examples, not reused for the
 * regression) makes scores independent of how test inputs are batched.
 * The k-nearest selection has no gradient in tfjs (TopK): `gradient: 'none'`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { type FeatureModel, featureModel, readFeatures } from './activations.js';
import { BaseDetector, fitted, gaussianNoise, sliceRows } from './detector.js';
import { DEFAULT_LOGISTIC, fitLogistic, type LogisticModel, logisticLogit } from './logistic.js';

export interface LidConfig {
  k: number;
  referenceSize: number;
  /** Std of the noisy negatives (input units). */
  noiseStd: number;
  seed: number;
}

/** LID MLE from distances to neighbours (float64; uses the k smallest; zero distances skipped). */
export function lidMle(distances: ArrayLike<number>, k: number): number {
  const r = Array.from(distances)
    .filter((v) => v > 0)
    .sort((a, b) => a - b)
    .slice(0, k);
  check(r.length > 0, () => 'lidMle: no positive distances');
  const rk = r[r.length - 1];
  const mean = r.reduce((s, v) => s + Math.log(v / rk), 0) / r.length;
  return mean === 0 ? Number.POSITIVE_INFINITY : -1 / mean;
}

/** Euclidean distances `[batch, m]` between rows of a `[batch, d]` and r `[m, d]`. */
export function pairwiseDistances(a: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const aa = tf.sum(tf.square(a), 1, true);
    const rr = tf.reshape(tf.sum(tf.square(r), 1), [1, -1]);
    const cross = tf.matMul(a, r, false, true);
    return tf.sqrt(tf.relu(tf.add(tf.sub(aa, tf.mul(cross, 2)), rr))) as tf.Tensor2D;
  });
}

/** LID estimates `[batch]` of rows of `a` against the reference rows `r`, k nearest. */
export function lidTensor(a: tf.Tensor2D, r: tf.Tensor2D, k: number): tf.Tensor1D {
  return tf.tidy(() => {
    const dist = pairwiseDistances(a, r);
    const nearest = tf.neg(tf.topk(tf.neg(dist), k).values); // ascending, [batch, k]
    const rk = tf.slice(nearest, [0, k - 1], [-1, 1]);
    const logs = tf.log(tf.div(tf.add(nearest, 1e-12), tf.add(rk, 1e-12)));
    const mean = tf.mean(logs, 1);
    // A point with all k neighbours equidistant has mean 0: LID is unbounded; cap it.
    return tf.minimum(tf.div(-1, tf.minimum(mean, -1e-6)), 1e6) as tf.Tensor1D;
  });
}

export class LidDetector extends BaseDetector {
  readonly name = 'lid';
  readonly gradient = 'none' as const;
  private readonly config: LidConfig;
  private fm?: FeatureModel;
  private references: tf.Tensor2D[] = [];
  private lr?: LogisticModel;

  constructor(config: Partial<LidConfig> = {}) {
    super();
    this.config = { k: 20, referenceSize: 100, noiseStd: 0.05, seed: 1, ...config };
    const { k, referenceSize } = this.config;
    check(
      Number.isInteger(k) && k >= 1 && k <= referenceSize,
      () => `lid: k must be in [1, referenceSize], got ${k}`,
      'BAD_OPTION',
    );
  }

  async fit(
    model: Classifier,
    cleanX: tf.Tensor,
    _labels?: tf.Tensor1D,
    advX?: tf.Tensor,
  ): Promise<void> {
    const adv = fitted('lid.fit: advX', advX);
    const n = cleanX.shape[0];
    const m = this.config.referenceSize;
    check(n > m, () => `lid.fit: need more than referenceSize = ${m} clean examples, got ${n}`);
    const fm = featureModel(model);
    this.dispose();
    this.fm = fm;
    const ref = sliceRows(cleanX, 0, m);
    this.references = fm.hidden.map((l) => {
      const f = readFeatures(fm, ref, l);
      return tf.keep(tf.tensor2d(Float32Array.from(f), [m, f.length / m]));
    });
    ref.dispose();
    const rest = sliceRows(cleanX, m, n - m);
    const noisy = gaussianNoise(rest, this.config.noiseStd, model.bounds, this.config.seed);
    const parts = [this.lidFeatures(rest), this.lidFeatures(noisy), this.lidFeatures(adv)];
    tf.dispose([rest, noisy]);
    const d = fm.hidden.length;
    const rows = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      rows.set(p, o);
      o += p.length;
    }
    const y = new Float64Array(rows.length / d).fill(1, (parts[0].length + parts[1].length) / d);
    this.lr = fitLogistic(rows, y, d, DEFAULT_LOGISTIC);
  }

  /** Per-layer LID features `[batch, layers]`. Caller owns. */
  lidTensorFeatures(x: tf.Tensor): tf.Tensor2D {
    const fm = fitted('lid', this.fm);
    return tf.tidy(() => {
      const r = fm.activations(x, fm.hidden);
      const lids = r.features.map((f, i) => lidTensor(f, this.references[i], this.config.k));
      return tf.stack(lids, 1) as tf.Tensor2D;
    });
  }

  scoreTensor(x: tf.Tensor): tf.Tensor1D {
    fitted('lid', this.lr);
    return tf.tidy(() => logisticLogit(this.lr!, this.lidTensorFeatures(x)));
  }

  dispose(): void {
    tf.dispose(this.references);
    this.references = [];
  }

  private lidFeatures(x: tf.Tensor): Float64Array {
    const out: number[] = [];
    for (let s = 0; s < x.shape[0]; s += 128) {
      const size = Math.min(128, x.shape[0] - s);
      const f = tf.tidy(() => this.lidTensorFeatures(sliceRows(x, s, size)));
      out.push(...f.dataSync());
      f.dispose();
    }
    return Float64Array.from(out);
  }
}
