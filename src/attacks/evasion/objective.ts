/**
 * What a gradient attack maximises, and the input checks every evasion entry point shares.
 * Untargeted attacks ascend the loss of the true label; targeted attacks descend the loss of the
 * target label, written here as ascending its negation so every step is "x + stepSize·direction".
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { crossEntropy, margin } from '../../objectives/losses.js';

export type AttackLoss = 'ce' | 'margin';

/**
 * Weight of the margin term in 'ce'. Where softmax saturates in float32 (a logit gap beyond ~90,
 * common far from the data, e.g. after a random start in a large ball) the cross-entropy gradient
 * is exactly zero and a sign step stalls: gradient masking by arithmetic. The margin's gradient
 * never vanishes; at this weight it only steers where the cross-entropy gradient is below ~1e-3,
 * i.e. where p_y > 0.999 and both point towards the runner-up class anyway.
 */
export const CE_MARGIN_WEIGHT = 1e-3;

/**
 * Per-example objective `[batch]` to maximise. `labels` are the true labels (untargeted) or the
 * target labels (targeted). 'ce': ±(cross-entropy − 1e-3·margin) (see CE_MARGIN_WEIGHT);
 * 'margin': the C&W margin max_{j≠y} z_j − z_y (untargeted) or z_t − max_{j≠t} z_j (targeted).
 */
export function attackObjective(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  targeted: boolean,
  loss: AttackLoss,
): tf.Tensor1D {
  return tf.tidy(() => {
    const m = margin(logits, labels);
    const ascend =
      loss === 'ce' ? tf.sub(crossEntropy(logits, labels), tf.mul(m, CE_MARGIN_WEIGHT)) : tf.neg(m);
    return (targeted ? tf.neg(ascend) : ascend) as tf.Tensor1D;
  });
}

/** 1 where the attack succeeded: misclassified (untargeted) or predicted as the target. */
export function attackSuccess(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  targeted: boolean,
): tf.Tensor1D {
  return tf.tidy(() => {
    const hit = tf.equal(tf.argMax(logits, 1), tf.cast(labels, 'int32'));
    return (targeted ? hit : tf.logicalNot(hit)) as tf.Tensor1D;
  });
}

/** Checks x `[batch, ...inputShape]` and labels `[batch]` against the model. */
export function checkBatch(
  fn: string,
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor,
  name = 'labels',
): void {
  check(
    x.rank === model.inputShape.length + 1 &&
      tf.util.arraysEqual(x.shape.slice(1), model.inputShape),
    () => `${fn}: x must have shape [batch, ${model.inputShape}], got [${x.shape}]`,
  );
  check(
    labels.rank === 1 && labels.shape[0] === x.shape[0],
    () => `${fn}: ${name} must have shape [${x.shape[0]}], got [${labels.shape}]`,
  );
}

/**
 * Checks x and labels (and targetLabels when targeted) and returns the labels the objective
 * uses: the true labels, or the targets of a targeted attack.
 */
export function attackGoal(
  fn: string,
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  targeted: boolean,
  targetLabels?: tf.Tensor1D,
): tf.Tensor1D {
  checkBatch(fn, model, x, labels);
  const goal = targeted ? targetLabels : labels;
  check(goal != null, () => `${fn}: targeted needs targetLabels`, 'BAD_OPTION');
  checkBatch(fn, model, x, goal, 'targetLabels');
  return goal;
}

export { parseWith } from '../../options.js';
