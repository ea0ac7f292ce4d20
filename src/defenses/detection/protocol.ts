/**
 * The detector protocol every caller follows (`parry detect` and the evaluate config alike): the
 * first `fitExamples` training examples fit the detector (a supervised detector also learns from
 * adversarial examples the caller crafts on them, with seed + 1), the next `calibrationExamples`
 * training examples set its threshold at the false-positive rate `fpr`, and the test split is left
 * to the evaluation. Both sets are data the defender has; neither is ever evaluated on.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { type Dataset, sliceDataset } from '../../data/dataset.js';
import { ParryError } from '../../errors.js';
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

/** How many training examples fit a detector and how many calibrate its threshold. */
export interface DetectorSplit {
  fitExamples: number;
  calibrationExamples: number;
}

/** The split `parry detect` and the evaluate config use unless told otherwise. */
export const DETECTOR_SPLIT: DetectorSplit = { fitExamples: 1000, calibrationExamples: 1000 };

/**
 * The fitting and calibration slices of the training split `train`: [0, fitExamples) and
 * [fitExamples, fitExamples + calibrationExamples). Too few examples is bad input.
 */
export function detectorSplit(
  train: Dataset,
  s: DetectorSplit,
): { fit: Dataset; calibration: Dataset } {
  const need = s.fitExamples + s.calibrationExamples;
  if (train.shape[0] < need) {
    throw new ParryError(
      'BAD_OPTION',
      `${train.name} has ${train.shape[0]} examples, fewer than the ${s.fitExamples} fitting + ${s.calibrationExamples} calibration examples a detector needs`,
    );
  }
  return {
    fit: sliceDataset(train, 0, s.fitExamples),
    calibration: sliceDataset(train, s.fitExamples, need),
  };
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
