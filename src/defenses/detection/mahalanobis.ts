/**
 * Mahalanobis detector (Lee, Lee, Lee & Shin 2018, "A simple unified framework for detecting
 * out-of-distribution samples and adversarial attacks"): class-conditional Gaussians with one
 * tied covariance on the penultimate activations f(x), fitted on clean training examples with
 * their true labels; score(x) = min_c (f(x) − μ_c)ᵀ Σ⁻¹ (f(x) − μ_c).
 *
 * Left out on purpose: the paper's input pre-processing (a small FGSM-like step that increases
 * the confidence score) and its logistic regression over several layers; this is the
 * single-layer, no-noise variant (their "feature ensemble" and "input pre-processing" ablated).
 * Σ is regularised as Σ + ridge·(tr Σ / d)·I: ReLU features have dead units with zero variance.
 * The score is differentiable in x (gradient 'exact'). Fitting is float64; scoring float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { type FeatureModel, featureModel, readFeatures } from '../../models/features.js';
import { BaseDetector, fitted } from './detector.js';
import { arrayOf, type DetectorState, type SavableDetector, stateTensor } from './fitted-state.js';
import { invertSpd } from './linalg.js';

export interface MahalanobisConfig {
  /** Relative ridge added to the tied covariance's diagonal. */
  ridge: number;
}

export interface GaussianFit {
  /** Class means [numClasses, d] (row-major). */
  means: Float64Array;
  /** Σ⁻¹ [d, d]. */
  precision: Float64Array;
  d: number;
  numClasses: number;
}

/** Class means and the regularised inverse of the tied covariance, in float64. */
export function fitTiedGaussians(
  features: Float64Array,
  labels: ArrayLike<number>,
  d: number,
  numClasses: number,
  ridge: number,
): GaussianFit {
  const n = labels.length;
  const means = new Float64Array(numClasses * d);
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < n; i++) {
    counts[labels[i]]++;
    for (let j = 0; j < d; j++) means[labels[i] * d + j] += features[i * d + j];
  }
  for (let c = 0; c < numClasses; c++) {
    for (let j = 0; j < d; j++) means[c * d + j] /= Math.max(counts[c], 1);
  }
  const cov = new Float64Array(d * d);
  const diff = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) diff[j] = features[i * d + j] - means[labels[i] * d + j];
    for (let a = 0; a < d; a++) {
      const da = diff[a] / n;
      if (da === 0) continue;
      for (let b = 0; b <= a; b++) cov[a * d + b] += da * diff[b];
    }
  }
  let trace = 0;
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < a; b++) cov[b * d + a] = cov[a * d + b];
    trace += cov[a * d + a];
  }
  const eps = ridge * (trace / d > 0 ? trace / d : 1);
  for (let a = 0; a < d; a++) cov[a * d + a] += eps;
  // Classes without examples get an infinitely far mean: they never win the min.
  for (let c = 0; c < numClasses; c++) if (counts[c] === 0) means.fill(1e15, c * d, (c + 1) * d);
  return { means, precision: invertSpd(cov, d), d, numClasses };
}

/** min_c Mahalanobis distance² `[batch]` of features `[batch, d]`; differentiable. */
export function minMahalanobis(
  features: tf.Tensor2D,
  means: tf.Tensor2D,
  precision: tf.Tensor2D,
): tf.Tensor1D {
  return tf.tidy(() => {
    const [b, d] = features.shape;
    const k = means.shape[0];
    const diff = tf.reshape(tf.sub(tf.expandDims(features, 1), tf.expandDims(means, 0)), [
      b * k,
      d,
    ]);
    const q = tf.sum(tf.mul(tf.matMul(diff, precision), diff), 1);
    return tf.min(tf.reshape(q, [b, k]), 1) as tf.Tensor1D;
  });
}

export class MahalanobisDetector extends BaseDetector implements SavableDetector {
  readonly name = 'mahalanobis';
  readonly gradient = 'exact' as const;
  private readonly config: MahalanobisConfig;
  private fm?: FeatureModel;
  private means?: tf.Tensor2D;
  private precision?: tf.Tensor2D;

  constructor(config: Partial<MahalanobisConfig> = {}) {
    super();
    this.config = { ridge: 1e-3, ...config };
    check(
      this.config.ridge >= 0,
      () => `mahalanobis: ridge must be >= 0, got ${this.config.ridge}`,
      'BAD_OPTION',
    );
  }

  async fit(model: Classifier, cleanX: tf.Tensor, cleanLabels?: tf.Tensor1D): Promise<void> {
    const labels = fitted('mahalanobis.fit: cleanLabels', cleanLabels);
    const fm = featureModel(model);
    const features = readFeatures(fm, cleanX, fm.penultimate);
    const y = Int32Array.from(await labels.data());
    const d = features.length / y.length;
    const g = fitTiedGaussians(features, y, d, model.numClasses, this.config.ridge);
    this.dispose();
    this.fm = fm;
    this.means = tf.keep(tf.tensor2d(Float32Array.from(g.means), [g.numClasses, d]));
    this.precision = tf.keep(tf.tensor2d(Float32Array.from(g.precision), [d, d]));
  }

  scoreTensor(x: tf.Tensor): tf.Tensor1D {
    const fm = fitted('mahalanobis', this.fm);
    return tf.tidy(() => {
      const r = fm.activations(x, [fm.penultimate]);
      return minMahalanobis(r.features[0], this.means!, this.precision!);
    });
  }

  /** Class means `means` [numClasses, d] and Σ⁻¹ `precision` [d, d] (float32, as scored). */
  exportState(): DetectorState {
    const means = fitted('mahalanobis', this.means);
    return {
      config: { ...this.config },
      values: {},
      arrays: { means: arrayOf(means), precision: arrayOf(this.precision!) },
      models: {},
    };
  }

  restoreState(model: Classifier, state: DetectorState): void {
    const fm = featureModel(model);
    const means = stateTensor('mahalanobis', state, 'means', [
      model.numClasses,
      null,
    ]) as tf.Tensor2D;
    const d = means.shape[1];
    let precision: tf.Tensor2D;
    try {
      precision = stateTensor('mahalanobis', state, 'precision', [d, d]) as tf.Tensor2D;
    } catch (e) {
      means.dispose();
      throw e;
    }
    this.dispose();
    this.fm = fm;
    this.means = means;
    this.precision = precision;
  }

  dispose(): void {
    tf.dispose([this.means, this.precision].filter((t) => t != null) as tf.Tensor[]);
    this.means = undefined;
    this.precision = undefined;
  }
}
