/**
 * Expectation over Transformation (Athalye, Engstrom, Ilyas & Kwok 2018; as an adaptive attack on
 * randomised defenses, Athalye, Carlini & Wagner 2018, §4.3). Threat model: white-box against a
 * defense that draws random transformations at inference (noise, crop, resize-and-pad).
 * The wrapper is a Classifier whose logits are the mean over `samples` independent draws of the
 * defended model's logits, so its gradient is the mean of the per-draw gradients (each through
 * BPDA for non-differentiable steps when `bpda`). Every attack runs on it unchanged. Averaging
 * logits rather than losses is what keeps it a Classifier; for the attack's loss L the gradient is
 * E[J_t]ᵀ∇L at the mean logits, which equals E[∇(L∘f_t)] to first order in the spread of the
 * draws, and exactly for deterministic transformations. Draws come from the wrapper's seeded Rng.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import type { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import { Rng } from '../engine/rng.js';
import type { Classifier } from '../models/classifier.js';
import { parseWith } from '../options.js';

export const eotConfigSchema = z
  .object({
    samples: z.number().int().min(1).max(1000).default(8),
    /** Straight-through surrogates for non-differentiable steps (BPDA inside EOT). */
    bpda: z.boolean().default(true),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type EotConfig = z.infer<typeof eotConfigSchema>;

export class EotClassifier implements Classifier {
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly bounds: [number, number];
  readonly config: EotConfig;
  private readonly rng: Rng;

  constructor(
    readonly defended: DefendedClassifier,
    config: unknown = {},
  ) {
    this.config = parseWith('eot', eotConfigSchema, config);
    this.inputShape = defended.inputShape;
    this.numClasses = defended.numClasses;
    this.bounds = defended.bounds;
    this.rng = new Rng(this.config.seed);
  }

  /** Mean logits over the draws. Caller owns the result. */
  logits(x: tf.Tensor): tf.Tensor2D {
    const { samples, bpda } = this.config;
    return tf.tidy(() => {
      const draws: tf.Tensor2D[] = [];
      for (let s = 0; s < samples; s++) draws.push(this.defended.logitsWith(x, this.rng, bpda));
      return tf.div(tf.addN(draws), samples) as tf.Tensor2D;
    });
  }
}
