/**
 * Backward Pass Differentiable Approximation (Athalye, Carlini & Wagner 2018, §4.1).
 * Threat model: white-box against a preprocessing defense whose steps mask the gradient
 * (quantisation, JPEG, median, TV). The wrapper is a Classifier whose forward pass is the
 * defended model's, exactly, and whose backward pass goes through each non-differentiable step's
 * surrogate (identity unless the step says otherwise). Any gradient attack run on it is the BPDA
 * version of itself (BPDA-PGD, BPDA-APGD, ...), unchanged. Randomised steps draw one sample per
 * call from the wrapper's own seeded generator; average over draws with `EotClassifier`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import type { Preprocessor } from '../defenses/preprocess/preprocessor.js';
import { Rng } from '../engine/rng.js';
import type { Classifier } from '../models/classifier.js';

export class BpdaClassifier implements Classifier {
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly bounds: [number, number];
  private readonly rng: Rng;

  constructor(
    readonly defended: DefendedClassifier,
    opts: { seed?: number } = {},
  ) {
    this.inputShape = defended.inputShape;
    this.numClasses = defended.numClasses;
    this.bounds = defended.bounds;
    this.rng = new Rng(opts.seed ?? 0);
  }

  /** Caller owns the result. */
  logits(x: tf.Tensor): tf.Tensor2D {
    return this.defended.logitsWith(x, this.rng, true);
  }
}

/**
 * What gradient attacks differentiate when `base` sits behind `preprocessors`: the BPDA wrapper
 * ('bpda'), or the defended model with the gradient tfjs gives through the chain ('none', the
 * non-adaptive attacker). Both draw their randomness from `seed`.
 */
export function preprocessAttacker(
  base: Classifier,
  preprocessors: readonly Preprocessor[],
  adaptive: 'bpda' | 'none',
  seed: number,
): Classifier {
  const defended = new DefendedClassifier(base, preprocessors, { seed });
  return adaptive === 'none' ? defended : new BpdaClassifier(defended, { seed });
}
