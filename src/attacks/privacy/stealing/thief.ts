/**
 * The thief: a fresh model of a parry architecture, trained with parry's training loop on
 * (query, victim answer) pairs. Targets are distributions (the victim's probabilities, or one-hot
 * labels when it gives only labels), so the loss is the cross-entropy −Σₖ tₖ log softmax(z)ₖ,
 * which is the usual cross-entropy when t is one-hot.
 *
 * The loop's batches carry int32 labels, not distributions: each transfer example is given its
 * own row index as "label", and the loss looks its target row up in a table. (The loop's
 * per-epoch accuracy then compares predictions with row indices and means nothing; nothing here
 * reads it.)
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { Dataset } from '../../../data/dataset.js';
import { ParryError } from '../../../errors.js';
import { ARCHITECTURES, buildArchitecture } from '../../../models/architectures.js';
import { TfjsClassifier } from '../../../models/tfjs-classifier.js';
import { type LossFn, trainModel } from '../../../train/loop.js';

/** A fresh, untrained thief with weights drawn from `seed`. */
export type ThiefBuilder = (seed: number) => tfl.LayersModel;

/** The thief's training options every stealing method shares. */
export const thiefShape = {
  arch: z
    .enum(ARCHITECTURES.map((a) => a.name) as [string, ...string[]])
    .default('cnn-small')
    .describe("thief's architecture (as parry train --arch)"),
  epochs: z
    .number()
    .int()
    .min(1)
    .default(10)
    .describe('epochs of thief training (per round for jacobian)'),
  batchSize: z.number().int().min(1).default(64).describe('thief training batch size'),
  lr: z.number().positive().default(0.001).describe('thief Adam learning rate'),
  queryBatch: z.number().int().min(1).default(128).describe('examples per victim query batch'),
};

/** The transfer set: queries and their targets (`[n · numClasses]`, each row a distribution). */
export interface TransferSet {
  /** `[n, ...inputShape]` row-major. */
  x: Float32Array;
  /** `[n, h, w, c]`. */
  shape: number[];
  targets: Float32Array;
  numClasses: number;
}

/** Builds thieves of architecture `arch` for inputs of `inputShape` and `numClasses` classes. */
export function architectureThief(
  arch: string,
  inputShape: number[],
  numClasses: number,
): ThiefBuilder {
  return (seed) => buildArchitecture(arch, { inputShape, numClasses, seed });
}

/** Soft-target cross-entropy; a batch's labels are row indices into `table` `[n, numClasses]`. */
export function softTargetLoss(table: tf.Tensor2D): LossFn {
  return (model, x, rows) => {
    const logits = model.apply(x, { training: true }) as tf.Tensor2D;
    const t = tf.gather(table, tf.cast(rows, 'int32'));
    const loss = tf.neg(tf.sum(tf.mul(t, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
    return { loss, logits };
  };
}

/**
 * Trains `model` in place on `set` with the training loop (Adam, shuffles from `seed`), in this
 * thread: the soft-target loss is a custom loss the loop's worker pool cannot rebuild.
 */
export async function fitThief(
  model: tfl.LayersModel,
  set: TransferSet,
  c: { epochs: number; batchSize: number; lr: number; seed: number },
  signal?: AbortSignal,
): Promise<void> {
  const n = set.shape[0];
  if (n === 0) return;
  if (set.targets.length !== n * set.numClasses) {
    throw new ParryError(
      'INTERNAL',
      `fitThief: ${set.targets.length} target values for ${n} examples of ${set.numClasses} classes`,
    );
  }
  const data: Dataset = {
    name: 'transfer set',
    x: set.x,
    shape: set.shape,
    labels: Int32Array.from({ length: n }, (_, i) => i),
    numClasses: set.numClasses,
  };
  const table = tf.tensor2d(set.targets, [n, set.numClasses]);
  try {
    await trainModel(
      model,
      data,
      { epochs: c.epochs, batchSize: c.batchSize, lr: c.lr, seed: c.seed },
      { lossFn: softTargetLoss(table), signal },
    );
  } finally {
    table.dispose();
  }
}

/** The thief as a white-box Classifier (for PGD and Jacobian steps); it does not own `model`. */
export function thiefClassifier(
  model: tfl.LayersModel,
  bounds: [number, number],
  numClasses: number,
): TfjsClassifier {
  return new TfjsClassifier(model, { bounds, numClasses });
}

/** Softmax probabilities of the thief on `count` flat rows, `[count · numClasses]`. */
export function thiefProbabilities(
  model: tfl.LayersModel,
  rows: Float32Array,
  shape: number[],
): Float32Array {
  const p = tf.tidy(() =>
    tf.softmax(model.apply(tf.tensor(rows, shape), { training: false }) as tf.Tensor2D),
  );
  try {
    return p.dataSync() as Float32Array;
  } finally {
    p.dispose();
  }
}
