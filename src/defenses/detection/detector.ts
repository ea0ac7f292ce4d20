/**
 * The detector interface (a detection defense: flag inputs as adversarial, do not classify them)
 * and what every detector shares: scores in batches, a threshold calibrated on clean data at a
 * chosen false-positive rate, decisions `score > threshold`.
 *
 * Threat model of the scores: each detector documents whether its score is differentiable in the
 * input (`gradient: 'exact'`), only through a BPDA surrogate (`'bpda'`, identity through the
 * non-differentiable part), or not usefully (`'none'`, e.g. a k-nearest-neighbour selection);
 * the joint adaptive attack (`adaptive/joint.ts`) reads it.
 */

import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { thresholdAtFpr } from './metrics.js';

export type ScoreGradient = 'exact' | 'bpda' | 'none';

export interface Detector {
  readonly name: string;
  readonly gradient: ScoreGradient;
  /** Decision threshold (`score > threshold` flags); +Infinity until `calibrate`. */
  threshold: number;
  /**
   * Fits what the detector needs: the model, clean inputs `[n, ...inputShape]`, their labels
   * (class-conditional detectors) and adversarial inputs (supervised detectors). Does not
   * dispose its arguments; keeps its own copies of what it needs.
   */
  fit(
    model: Classifier,
    cleanX: tf.Tensor,
    cleanLabels?: tf.Tensor1D,
    advX?: tf.Tensor,
  ): Promise<void>;
  /** Scores `[batch]`, higher = more likely adversarial, as a tensor. Caller owns it. */
  scoreTensor(x: tf.Tensor): tf.Tensor1D;
  /** Scores read back (in batches). */
  score(x: tf.Tensor): Float32Array;
  /** Sets and returns the threshold flagging at most ⌊fpr·n⌋ of `cleanX`. */
  calibrate(cleanX: tf.Tensor, fpr: number): number;
  detect(x: tf.Tensor): boolean[];
  /** Frees the tensors the detector holds. */
  dispose(): void;
}

/**
 * The one rule for a detector's false-positive rate, shared by `calibrate`, `parry detect` and
 * the evaluate config: strictly between 0 and 1 (at 0 the threshold sits above every clean
 * score and nothing is flagged; at 1 everything is).
 */
export const FPR_RULE = 'a false-positive rate strictly between 0 and 1';
export const fprSchema = z.number().gt(0).lt(1);
export const isValidFpr = (fpr: number) => fprSchema.safeParse(fpr).success;

/** Examples per scoring batch: bounds memory of pairwise-distance detectors. */
export const SCORE_BATCH = 128;

/** What `Detector` implements once: batching, calibration, decisions. */
export abstract class BaseDetector implements Detector {
  abstract readonly name: string;
  abstract readonly gradient: ScoreGradient;
  threshold = Number.POSITIVE_INFINITY;

  abstract fit(
    model: Classifier,
    cleanX: tf.Tensor,
    cleanLabels?: tf.Tensor1D,
    advX?: tf.Tensor,
  ): Promise<void>;
  abstract scoreTensor(x: tf.Tensor): tf.Tensor1D;
  abstract dispose(): void;

  score(x: tf.Tensor): Float32Array {
    const n = x.shape[0];
    const out = new Float32Array(n);
    for (let start = 0; start < n; start += SCORE_BATCH) {
      const size = Math.min(SCORE_BATCH, n - start);
      const s = tf.tidy(() => this.scoreTensor(sliceRows(x, start, size)));
      out.set(s.dataSync() as Float32Array, start);
      s.dispose();
    }
    return out;
  }

  calibrate(cleanX: tf.Tensor, fpr: number): number {
    check(
      isValidFpr(fpr),
      () => `${this.name}.calibrate: fpr must be ${FPR_RULE}, got ${fpr}`,
      'BAD_OPTION',
    );
    this.threshold = thresholdAtFpr(this.score(cleanX), fpr);
    return this.threshold;
  }

  detect(x: tf.Tensor): boolean[] {
    return Array.from(this.score(x), (s) => s > this.threshold);
  }
}

/** Rows [start, start + size) of a batch. */
export function sliceRows(x: tf.Tensor, start: number, size: number): tf.Tensor {
  return tf.slice(x, [start, ...x.shape.slice(1).map(() => 0)], [size, ...x.shape.slice(1)]);
}

/** Requires `fit` to have run. */
export function fitted<T>(name: string, value: T | undefined): T {
  check(value !== undefined, () => `${name}: call fit() first`, 'BAD_OPTION');
  return value as T;
}

/** Reads a `[n, d]` tensor into float64 rows (a fit-time boundary). */
export function toRows(t: tf.Tensor2D): Float64Array {
  return Float64Array.from(t.dataSync());
}

/** clip(x + N(0, std²)) noisy copies, seeded: the "noisy" negatives of LID / KDE (Ma, Feinman). */
export function gaussianNoise(
  x: tf.Tensor,
  std: number,
  bounds: [number, number],
  seed: number,
): tf.Tensor {
  return tf.tidy(() =>
    tf.clipByValue(
      tf.add(x, tf.randomNormal(x.shape, 0, std, 'float32', seed)),
      bounds[0],
      bounds[1],
    ),
  );
}
