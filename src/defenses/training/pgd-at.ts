/**
 * PGD adversarial training (Madry, Makelov, Schmidt, Tsipras & Vladu 2018): minimise the
 * cross-entropy on PGD examples, min_θ E[max_{‖δ‖≤ε} CE(f_θ(x + δ), y)], approximating the inner
 * max with K steps of PGD on cross-entropy from a random start. With `mix` > 0 the batch loss is
 * mix·CE(x) + (1 − mix)·CE(x_adv) (Goodfellow et al. 2015's mixture). x_adv is a constant for the
 * weight gradient. The logits reported for training accuracy are the adversarial ones.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { crossEntropy } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import {
  adversarialMethod,
  craftPgd,
  type RobustTraining,
  type SettingAt,
  threatSchema,
  trainingLogits,
} from './adversarial.js';

export const pgdTrainingConfigSchema = threatSchema
  .extend({
    /** Fraction of the loss on clean examples. */
    mix: z.number().min(0).max(1).default(0),
  })
  .strict();
export type PgdTrainingConfig = z.infer<typeof pgdTrainingConfigSchema>;
export type PgdTrainingConfigInput = z.input<typeof pgdTrainingConfigSchema>;

/** PGD-AT for `trainModel`; `settingAt` overrides the constant eps/steps (see schedule.ts). */
export function createPgdTraining(
  config: PgdTrainingConfigInput,
  settingAt?: SettingAt,
): RobustTraining & { config: PgdTrainingConfig } {
  const c = parseWith('pgdTraining', pgdTrainingConfigSchema, config);
  return adversarialMethod(
    'pgdTraining',
    c,
    settingAt,
    1 + (c.mix > 0 ? 1 : 0),
    (model, x, labels, s, rng) => craftPgd(model, x, labels, c.norm, s, rng),
    (model, x, xAdv, labels) => {
      const logits = trainingLogits(model, xAdv);
      let loss = crossEntropy(logits, labels);
      if (c.mix > 0) {
        const clean = crossEntropy(trainingLogits(model, x), labels);
        loss = tf.add(tf.mul(clean, c.mix), tf.mul(loss, 1 - c.mix));
      }
      return { loss, logits };
    },
  );
}
