/**
 * How well a thief copies its victim, on a labelled test set the attack never queried:
 * - accuracy: the thief's top-1 against the true labels;
 * - agreement: the thief's top-1 equal to the victim's;
 * - transfer rate: of the examples the victim classifies correctly, the share it misclassifies
 *   once PGD (untargeted, crafted on the thief with the true labels) has moved them — the
 *   black-box transfer attack a stolen model enables (Papernot et al. 2017).
 * The victim queries made here are the evaluator's, not the attacker's: they do not count
 * against the budget. Only the victim's top-1 is read, so label-only victims are measured alike.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { type Dataset, exampleSize } from '../../../data/dataset.js';
import type { QueryClassifier } from '../../../models/classifier.js';
import { seedSchema } from '../../../objectives/threat-model.js';
import { parseWith } from '../../../options.js';
import { pgd } from '../../evasion/pgd.js';
import { disposeAttackResult } from '../../result.js';
import { thiefClassifier } from './thief.js';

export const transferSchema = z.strictObject({
  eps: z.number().min(0).default(0.1).describe('transfer PGD: L∞ radius'),
  steps: z.number().int().min(0).default(10).describe('transfer PGD: iterations'),
  batchSize: z.number().int().min(1).default(128).describe('examples per evaluation batch'),
  seed: seedSchema.default(0),
});
export type TransferConfig = z.infer<typeof transferSchema>;

export interface ThiefScores {
  accuracy: number;
  agreement: number;
  /** null when the victim classifies no test example correctly. */
  transferRate: number | null;
  /** The victim's own test accuracy (the ceiling a thief is compared with). */
  victimAccuracy: number;
  /** Test examples measured. */
  n: number;
}

/** Top-1 of each row of a `[m, k]` tensor. */
async function top1(t: tf.Tensor2D): Promise<Int32Array> {
  const a = tf.argMax(t, 1);
  try {
    return (await a.data()) as Int32Array;
  } finally {
    a.dispose();
  }
}

/** Scores `model` (the thief) against `victim` on `test` (see the module comment). */
export async function scoreThief(
  model: tfl.LayersModel,
  victim: QueryClassifier,
  test: Dataset,
  config: z.input<typeof transferSchema> = {},
): Promise<ThiefScores> {
  const c = parseWith('scoreThief', transferSchema, config);
  const thief = thiefClassifier(model, victim.bounds, victim.numClasses);
  const n = test.shape[0];
  const per = exampleSize(test);
  let correct = 0;
  let agree = 0;
  let victimCorrect = 0;
  let transferred = 0;
  for (let start = 0; start < n; start += c.batchSize) {
    const m = Math.min(c.batchSize, n - start);
    const y = test.labels.subarray(start, start + m);
    const x = tf.tensor(test.x.subarray(start * per, (start + m) * per), [
      m,
      ...test.shape.slice(1),
    ]);
    const labels = tf.tensor1d(Int32Array.from(y), 'int32');
    try {
      const logits = thief.logits(x);
      const mine = await top1(logits);
      logits.dispose();
      const answer = await victim.predict(x);
      const theirs = await top1(answer);
      answer.dispose();
      const attack = await pgd(thief, x, labels, {
        eps: c.eps,
        steps: c.steps,
        norm: 'linf',
        seed: (c.seed + start) >>> 0,
      });
      const adv = await victim.predict(attack.xAdv);
      disposeAttackResult(attack);
      const afterAttack = await top1(adv);
      adv.dispose();
      for (let i = 0; i < m; i++) {
        if (mine[i] === y[i]) correct++;
        if (mine[i] === theirs[i]) agree++;
        if (theirs[i] === y[i]) {
          victimCorrect++;
          if (afterAttack[i] !== y[i]) transferred++;
        }
      }
    } finally {
      tf.dispose([x, labels]);
    }
  }
  return {
    accuracy: correct / n,
    agreement: agree / n,
    transferRate: victimCorrect === 0 ? null : transferred / victimCorrect,
    victimAccuracy: victimCorrect / n,
    n,
  };
}
