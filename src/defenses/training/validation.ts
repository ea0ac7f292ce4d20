/**
 * Held-out robust accuracy for robust training's per-epoch bookkeeping: clean, PGD and FGSM
 * accuracy of a classifier on a (small, fixed) data set. PGD is the attack the methods are judged
 * by (random start, CE, 2.5·eps/steps); FGSM accuracy is what catastrophic overfitting leaves high.
 * Values are read once per batch (a boundary).
 */
import * as tf from '@tensorflow/tfjs-core';
import { fgsm } from '../../attacks/evasion/fgsm.js';
import { pgd } from '../../attacks/evasion/pgd.js';
import { batches, type Dataset } from '../../data/index.js';
import type { Classifier } from '../../models/classifier.js';
import { countCorrect } from '../../train/losses.js';

export interface HeldOutAccuracy {
  clean: number;
  pgd: number;
  fgsm: number;
}

export interface HeldOutConfig {
  eps: number;
  norm: 'linf' | 'l2';
  steps: number;
  seed: number;
  /** Also measure FGSM accuracy (fast-at's overfitting guard). */
  withFgsm?: boolean;
  batchSize?: number;
}

export async function heldOutAccuracy(
  model: Classifier,
  data: Dataset,
  c: HeldOutConfig,
): Promise<HeldOutAccuracy> {
  let clean = 0;
  let robust = 0;
  let single = 0;
  let n = 0;
  for (const b of batches(data, c.batchSize ?? 250)) {
    const x = tf.tensor(b.x, b.shape);
    const y = tf.tensor1d(b.labels, 'int32');
    const { xAdv } = await pgd(model, x, y, {
      eps: c.eps,
      norm: c.norm,
      steps: c.steps,
      seed: c.seed,
    });
    const xFgsm = c.withFgsm ? fgsm(model, x, y, { eps: c.eps, norm: c.norm }) : undefined;
    const counts = tf.tidy(() =>
      tf.stack([
        countCorrect(model.logits(x), y),
        countCorrect(model.logits(xAdv), y),
        xFgsm ? countCorrect(model.logits(xFgsm), y) : tf.scalar(0, 'int32'),
      ]),
    );
    const [a, r, f] = await counts.data();
    tf.dispose([x, y, xAdv, counts, ...(xFgsm ? [xFgsm] : [])]);
    clean += a;
    robust += r;
    single += f;
    n += b.labels.length;
  }
  const frac = (k: number) => (n === 0 ? 0 : k / n);
  return { clean: frac(clean), pgd: frac(robust), fgsm: c.withFgsm ? frac(single) : Number.NaN };
}
