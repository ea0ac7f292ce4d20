/**
 * The detector protocol every caller follows: build the named detector with a seed, fit it on
 * clean training examples (a supervised detector also on adversarial ones), then set its
 * threshold at the false-positive rate `fpr` on held-out clean examples the defender has — never
 * on the examples it is evaluated on. `parry detect` and the evaluate config both call this.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../models/classifier.js';
import type { Detector } from './detector.js';
import { createDetector, DETECTORS, type DetectorName } from './registry.js';

export interface DetectorFitData {
  /** Clean fitting examples and their labels. */
  x: tf.Tensor;
  labels: tf.Tensor1D;
  /** Adversarial fitting examples; used only by supervised detectors. */
  adversarial?: tf.Tensor;
  /** Held-out clean examples the threshold is calibrated on. */
  calibration: tf.Tensor;
}

/** Whether detector `name` learns from adversarial examples too. */
export const isSupervised = (name: DetectorName): boolean =>
  DETECTORS.find((d) => d.name === name)?.supervised === true;

/** A fitted, calibrated detector; the caller owns it (`dispose`). Owns none of `data`. */
export async function fitCalibratedDetector(
  name: DetectorName,
  model: Classifier,
  data: DetectorFitData,
  fpr: number,
  seed: number,
): Promise<Detector> {
  const detector = createDetector(name, seed);
  try {
    await detector.fit(
      model,
      data.x,
      data.labels,
      isSupervised(name) ? data.adversarial : undefined,
    );
    detector.calibrate(data.calibration, fpr);
    return detector;
  } catch (e) {
    detector.dispose();
    throw e;
  }
}
