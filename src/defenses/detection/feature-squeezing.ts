/**
 * Feature-squeezing detector (Xu, Evans & Qi 2018, "Feature squeezing: detecting adversarial
 * examples in deep neural networks"): score(x) = max over squeezers s of ‖p(x) − p(s(x))‖₁,
 * p the model's softmax. Squeezers: bit-depth reduction and median smoothing (the paper's
 * MNIST setting is 1 bit and a 2×2 median; the defaults here, 4 bits and 2×2, suit grey-scale
 * images with more detail such as Fashion-MNIST). Unsupervised: `fit` only stores the model.
 * Gradient 'bpda': squeezers pass gradients through as the identity.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { BaseDetector, fitted } from './detector.js';
import type { DetectorState, SavableDetector } from './fitted-state.js';
import { bitDepth, medianFilter, withIdentityGradient } from './squeezers.js';

export interface SqueezeConfig {
  /** Bit depth, or null to skip bit-depth reduction. */
  bits: number | null;
  /** Median window size, or null to skip median smoothing. */
  median: number | null;
}

export class FeatureSqueezingDetector extends BaseDetector implements SavableDetector {
  readonly name = 'squeeze';
  readonly gradient = 'bpda' as const;
  readonly config: SqueezeConfig;
  private model?: Classifier;

  constructor(config: Partial<SqueezeConfig> = {}) {
    super();
    this.config = { bits: 4, median: 2, ...config };
    const { bits, median } = this.config;
    check(
      bits === null || (Number.isInteger(bits) && bits >= 1 && bits <= 16),
      () => `squeeze: bits must be an integer in [1, 16], got ${bits}`,
      'BAD_OPTION',
    );
    check(
      median === null || (Number.isInteger(median) && median >= 1),
      () => `squeeze: median must be a positive integer, got ${median}`,
      'BAD_OPTION',
    );
    check(
      bits !== null || median !== null,
      () => 'squeeze: needs at least one squeezer',
      'BAD_OPTION',
    );
  }

  async fit(model: Classifier): Promise<void> {
    this.model = model;
  }

  /** The squeezers, each with a BPDA (identity) gradient. */
  squeezers(bounds: [number, number]): ((x: tf.Tensor) => tf.Tensor)[] {
    const out: ((x: tf.Tensor) => tf.Tensor)[] = [];
    const { bits, median } = this.config;
    if (bits !== null) out.push(withIdentityGradient((x) => bitDepth(x, bits, bounds)));
    if (median !== null)
      out.push(withIdentityGradient((x) => medianFilter(x as tf.Tensor4D, median)));
    return out;
  }

  scoreTensor(x: tf.Tensor): tf.Tensor1D {
    const model = fitted('squeeze', this.model);
    return tf.tidy(() => {
      const p = tf.softmax(model.logits(x));
      const distances = this.squeezers(model.bounds).map((s) =>
        tf.sum(tf.abs(tf.sub(p, tf.softmax(model.logits(s(x))))), 1),
      );
      return tf.max(tf.stack(distances, 1), 1) as tf.Tensor1D;
    });
  }

  /** Nothing is fitted besides the model: the state is the settings. */
  exportState(): DetectorState {
    fitted('squeeze', this.model);
    return { config: { ...this.config }, values: {}, arrays: {}, models: {} };
  }

  restoreState(model: Classifier): void {
    this.model = model;
  }

  dispose(): void {}
}
