/**
 * STRIP (Gao et al., "STRIP: A Defence Against Trojan Attacks on Deep Neural Networks", ACSAC
 * 2019): an input-time backdoor detector. The input is superimposed on N clean images drawn once
 * (seeded) from the data `fit` was given — x + c_j, clipped to the model's bounds (the paper adds
 * the two images) — and the Shannon entropy (natural log) of the model's softmax on each blend is
 * averaged. A trigger keeps its target class whatever the input is blended with, so triggered
 * inputs have low entropy; the score is the negated mean entropy (higher = more suspicious), and
 * the threshold is set at a chosen false-rejection rate of clean inputs (`calibrate`). The score
 * has no useful gradient (`'none'`): the blends are fixed and the attack it meets is a training-
 * time one.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { BaseDetector, fitted } from './detector.js';
import { arrayOf, type DetectorState, type SavableDetector, stateTensor } from './fitted-state.js';

export interface StripConfig {
  /** Clean images each input is superimposed on (the paper's N). */
  samples: number;
  seed: number;
}

/** Mean over the blends of each input's prediction entropy, as `[batch]`. */
export function stripEntropy(model: Classifier, x: tf.Tensor, overlays: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => {
    const b = x.shape[0];
    const n = overlays.shape[0];
    const [lo, hi] = model.bounds;
    // [b, n, ...]: input i plus overlay j.
    const blends = tf.clipByValue(tf.add(tf.expandDims(x, 1), tf.expandDims(overlays, 0)), lo, hi);
    const flat = tf.reshape(blends, [b * n, ...x.shape.slice(1)]);
    const logp = tf.logSoftmax(model.logits(flat));
    const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1));
    return tf.mean(tf.reshape(entropy, [b, n]), 1) as tf.Tensor1D;
  });
}

export class StripDetector extends BaseDetector implements SavableDetector {
  readonly name = 'strip';
  readonly gradient = 'none' as const;
  readonly config: StripConfig;
  private model?: Classifier;
  private overlays?: tf.Tensor;

  constructor(config: Partial<StripConfig> = {}) {
    super();
    this.config = { samples: 100, seed: 1, ...config };
    check(
      Number.isInteger(this.config.samples) && this.config.samples >= 1,
      () => `strip: samples must be a positive integer, got ${this.config.samples}`,
      'BAD_OPTION',
    );
  }

  /** Keeps `samples` of `cleanX` (drawn without replacement, seeded) as the overlays. */
  async fit(model: Classifier, cleanX: tf.Tensor): Promise<void> {
    const n = cleanX.shape[0];
    check(n >= 1, () => 'strip: fit needs clean images', 'BAD_INPUT');
    const take = Math.min(this.config.samples, n);
    const picks = new Rng(this.config.seed).permutation(n).subarray(0, take);
    this.overlays?.dispose();
    this.overlays = tf.tidy(() => tf.gather(cleanX, tf.tensor1d(picks, 'int32')));
    this.model = model;
  }

  /** Negated mean entropy: higher = more suspicious. */
  scoreTensor(x: tf.Tensor): tf.Tensor1D {
    const model = fitted('strip', this.model);
    const overlays = fitted('strip', this.overlays);
    return tf.tidy(() => tf.neg(stripEntropy(model, x, overlays)));
  }

  /** The clean images inputs are blended with, `overlays` [N, ...inputShape]. */
  exportState(): DetectorState {
    const overlays = fitted('strip', this.overlays);
    return {
      config: { ...this.config },
      values: {},
      arrays: { overlays: arrayOf(overlays) },
      models: {},
    };
  }

  restoreState(model: Classifier, state: DetectorState): void {
    const overlays = stateTensor('strip', state, 'overlays', [null, ...model.inputShape]);
    this.overlays?.dispose();
    this.overlays = overlays;
    this.model = model;
  }

  /** Frees the overlays; scoring needs `fit` again. */
  dispose(): void {
    this.overlays?.dispose();
    this.overlays = undefined;
    this.model = undefined;
  }
}
