/**
 * A classifier behind a chain of preprocessors: logits(x) = base.logits(p_k(…p_1(x))). It is a
 * Classifier, so every attack runs against it unchanged. Its plain gradient is whatever tfjs
 * gives through the chain (zero through quantisation, JPEG, median, TV: gradient masking), which
 * is exactly what a non-adaptive attack sees. `bpdaLogits` replaces each non-differentiable step
 * on the backward pass by its surrogate (BPDA, Athalye, Carlini & Wagner 2018) with the forward
 * value unchanged. Randomised steps draw from the classifier's own generator, seeded at
 * construction, so a run is reproducible from its seed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { type Preprocessor, straightThrough } from './preprocessor.js';

export interface DefendedOptions {
  /** Seed of the randomised steps' generator; default 0. */
  seed?: number;
}

export class DefendedClassifier implements Classifier {
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly bounds: [number, number];
  readonly preprocessors: readonly Preprocessor[];
  /** Some step draws randomness (EOT applies). */
  readonly randomized: boolean;
  /** Every step is differentiable (BPDA changes nothing). */
  readonly differentiable: boolean;
  readonly seed: number;
  private readonly rng: Rng;

  constructor(
    readonly base: Classifier,
    preprocessors: readonly Preprocessor[],
    opts: DefendedOptions = {},
  ) {
    check(
      base.inputShape.length === 3,
      () => `DefendedClassifier: preprocessors take images [h, w, c], got [${base.inputShape}]`,
      'UNSUPPORTED',
    );
    this.inputShape = base.inputShape;
    this.numClasses = base.numClasses;
    this.bounds = base.bounds;
    this.preprocessors = [...preprocessors];
    this.randomized = preprocessors.some((p) => p.randomized);
    this.differentiable = preprocessors.every((p) => p.differentiable);
    this.seed = opts.seed ?? 0;
    this.rng = new Rng(this.seed);
  }

  /** The preprocessed input (the plain chain). Caller owns it. */
  preprocess(x: tf.Tensor, rng: Rng = this.rng): tf.Tensor4D {
    return this.chain(x, rng, false);
  }

  /** Logits of the defended model; differentiable as tfjs makes it. Caller owns the result. */
  logits(x: tf.Tensor): tf.Tensor2D {
    return this.logitsWith(x, this.rng, false);
  }

  /** Same forward value; the backward pass of each non-differentiable step is its surrogate's. */
  bpdaLogits(x: tf.Tensor): tf.Tensor2D {
    return this.logitsWith(x, this.rng, true);
  }

  /** `logits` or `bpdaLogits` with randomness from `rng` (for wrappers with their own seed). */
  logitsWith(x: tf.Tensor, rng: Rng, bpda: boolean): tf.Tensor2D {
    return tf.tidy(() => this.base.logits(this.chain(x, rng, bpda)));
  }

  private chain(x: tf.Tensor, rng: Rng, bpda: boolean): tf.Tensor4D {
    return tf.tidy(() => {
      let z = x as tf.Tensor4D;
      for (const p of this.preprocessors) {
        const out = p.apply(z, this.bounds, rng);
        // Straight-through: value of apply(z), gradient of surrogate(z).
        z =
          bpda && !p.differentiable
            ? (straightThrough(out, p.surrogate(z, this.bounds)) as tf.Tensor4D)
            : out;
      }
      return z === x ? (tf.clone(x) as tf.Tensor4D) : z;
    });
  }
}
