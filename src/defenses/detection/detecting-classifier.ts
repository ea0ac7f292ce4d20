/**
 * A classifier that abstains: base logits plus a reject class (label = base.numClasses) whose
 * logit is max_j z_j + scale·(score(x) − threshold), so it wins exactly when the detector fires
 * (score > threshold; on a tie the base class wins, as `detect` does). Being a Classifier it can
 * be attacked unchanged; the reject logit is differentiable where the detector's score is
 * (BPDA for squeezing; detectors with `gradient: 'none'` contribute a zero gradient).
 *
 * How to count: an untargeted attack succeeds only if the prediction is neither the true label
 * nor the reject label. A rejected adversarial example counts as defended, a rejected clean
 * example as an error (the price of the false-positive rate): see `detectionAccuracy`.
 * The generic `evaluateAttack` counts robust = "prediction equals the label" and so treats a
 * rejection as a successful attack; use `detectionAccuracy` for detecting classifiers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import type { Detector } from './detector.js';

export class DetectingClassifier implements Classifier {
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly bounds: [number, number];
  readonly rejectLabel: number;

  constructor(
    readonly base: Classifier,
    readonly detector: Detector,
    readonly scale = 1,
  ) {
    check(
      Number.isFinite(detector.threshold),
      () =>
        `DetectingClassifier: detector '${detector.name}' needs a finite threshold (calibrate first), got ${detector.threshold}`,
      'BAD_OPTION',
    );
    this.inputShape = [...base.inputShape];
    this.numClasses = base.numClasses + 1;
    this.bounds = [...base.bounds] as [number, number];
    this.rejectLabel = base.numClasses;
  }

  logits(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => {
      const z = this.base.logits(x);
      const s = scoreForGradient(this.detector, x);
      const reject = tf.add(tf.max(z, 1), tf.mul(tf.sub(s, this.detector.threshold), this.scale));
      return tf.concat([z, tf.expandDims(reject, 1)], 1) as tf.Tensor2D;
    });
  }
}

/** The detector's score; with `gradient: 'none'` its gradient is replaced by zero. */
export function scoreForGradient(detector: Detector, x: tf.Tensor): tf.Tensor1D {
  if (detector.gradient !== 'none') return detector.scoreTensor(x);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as tf.Tensor;
    return { value: detector.scoreTensor(input), gradFunc: () => tf.zerosLike(input) };
  });
  return f(x) as tf.Tensor1D;
}

export interface DetectionAccuracy {
  /** Clean examples classified correctly and not rejected. */
  cleanAccuracy: number;
  /** Adversarial examples classified correctly or rejected (defended). */
  robustAccuracy: number;
  /** Adversarial examples rejected. */
  rejected: number;
  /** Attack success: neither the label nor rejected. */
  attackSuccessRate: number;
}

/** Accuracies of a DetectingClassifier from its predictions (reject label = `rejectLabel`). */
export function detectionAccuracy(
  labels: ArrayLike<number>,
  clean: ArrayLike<number>,
  adversarial: ArrayLike<number>,
  rejectLabel: number,
): DetectionAccuracy {
  const n = labels.length;
  let cleanOk = 0;
  let defended = 0;
  let rejected = 0;
  for (let i = 0; i < n; i++) {
    if (clean[i] === labels[i]) cleanOk++;
    if (adversarial[i] === rejectLabel) rejected++;
    if (adversarial[i] === labels[i] || adversarial[i] === rejectLabel) defended++;
  }
  return {
    cleanAccuracy: cleanOk / n,
    robustAccuracy: defended / n,
    rejected: rejected / n,
    attackSuccessRate: (n - defended) / n,
  };
}
