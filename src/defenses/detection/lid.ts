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
 * Gradient: which reference points are the k nearest is piecewise constant in x, so the score is
 * differentiated with the selection held fixed (exact wherever the neighbour order does not
 * change): the distances to the selected points carry the gradient (`gradient: 'exact'`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { type FeatureModel, featureModel, readFeatures } from '../../models/features.js';
import { BaseDetector, fitted, gaussianNoise, sliceRows } from './detector.js';
import {
  arrayOf,
  type DetectorState,
  logisticFromState,
  logisticState,
  type SavableDetector,
  stateTensor,
} from './fitted-state.js';
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

/** Euclidean distances `[batch, m]` between rows of a `[batch, d]` and r `[m, d]` (floored at 1e-6). */
export function pairwiseDistances(a: tf.Tensor2D, r: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const aa = tf.sum(tf.square(a), 1, true);
    const rr = tf.reshape(tf.sum(tf.square(r), 1), [1, -1]);
    const cross = tf.matMul(a, r, false, true);
    // Floored at 1e-6: sqrt has an infinite slope at 0, and ReLU features of different inputs
    // can coincide (the floor's own gradient there is 0).
    return tf.sqrt(tf.maximum(tf.add(tf.sub(aa, tf.mul(cross, 2)), rr), 1e-12)) as tf.Tensor2D;
  });
}

/**
 * Which of the columns of `dist` `[batch, m]` hold each row's k smallest values: `[2, batch, m]`,
 * the k-nearest mask and the one-hot of the k-th nearest. Piecewise constant in `dist`, so its
 * gradient is zero (tfjs has none for TopK; this keeps it off the tape).
 */
const nearestSelection = (k: number) =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const dist = args[0] as tf.Tensor2D;
    const m = dist.shape[1];
    const order = tf.topk(tf.neg(dist), k).indices; // ascending distance, [batch, k]
    // int32 one-hots, then cast: tfjs-backend-wasm 4.22's OneHot returns zeros for 'float32'.
    const mask = tf.cast(tf.sum(tf.oneHot(order, m), 1), 'float32');
    const kth = tf.squeeze(
      tf.cast(tf.oneHot(tf.slice(order, [0, k - 1], [-1, 1]), m), 'float32'),
      [1],
    );
    return { value: tf.stack([mask, kth]), gradFunc: () => tf.zerosLike(dist) };
  });

/**
 * LID estimates `[batch]` of rows of `a` against the reference rows `r`, k nearest,
 * differentiable in `a` with the neighbour selection held fixed.
 */
export function lidTensor(a: tf.Tensor2D, r: tf.Tensor2D, k: number): tf.Tensor1D {
  return tf.tidy(() => {
    const dist = pairwiseDistances(a, r);
    const [mask, kth] = tf.unstack(nearestSelection(k)(dist) as tf.Tensor3D);
    const logs = tf.log(tf.add(dist, 1e-12));
    // (1/k) Σ_i log(r_i / r_k) over the k nearest.
    const mean = tf.sub(tf.div(tf.sum(tf.mul(mask, logs), 1), k), tf.sum(tf.mul(kth, logs), 1));
    // A point with all k neighbours equidistant has mean 0: LID is unbounded; cap it.
    return tf.minimum(tf.div(-1, tf.minimum(mean, -1e-6)), 1e6) as tf.Tensor1D;
  });
}

export class LidDetector extends BaseDetector implements SavableDetector {
  readonly name = 'lid';
  readonly gradient = 'exact' as const;
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

  /** The reference activations `references.<l>` [referenceSize, d_l] and the regression `logistic.*`. */
  exportState(): DetectorState {
    const lr = fitted('lid', this.lr);
    fitted('lid', this.references.length > 0 ? this.references : undefined);
    const lrState = logisticState(lr, 'logistic');
    const refs = Object.fromEntries(this.references.map((r, l) => [`references.${l}`, arrayOf(r)]));
    return {
      config: { ...this.config },
      values: lrState.values,
      arrays: { ...refs, ...lrState.arrays },
      models: {},
    };
  }

  restoreState(model: Classifier, state: DetectorState): void {
    const fm = featureModel(model);
    const lr = logisticFromState('lid', state, 'logistic', fm.hidden.length);
    const refs: tf.Tensor2D[] = [];
    try {
      for (let l = 0; l < fm.hidden.length; l++) {
        const shape = [this.config.referenceSize, null];
        refs.push(stateTensor('lid', state, `references.${l}`, shape) as tf.Tensor2D);
      }
    } catch (e) {
      tf.dispose(refs);
      throw e;
    }
    this.dispose();
    this.fm = fm;
    this.references = refs;
    this.lr = lr;
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
