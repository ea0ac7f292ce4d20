/**
 * The Difference of Logits Ratio losses of Croce & Hein (ICML 2020, "Reliable evaluation of
 * adversarial robustness with an ensemble of diverse parameter-free attacks", eqs. 5 and 7).
 * With z the logits sorted so z_π1 ≥ z_π2 ≥ …:
 *   DLR(z, y)            = −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3 + 1e-12)
 *   targeted DLR(z, y, t) = −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)
 * Both are invariant to shifting and to positive scaling of the logits (up to the 1e-12), which is
 * why APGD uses them against defenses that rescale logits. Losses are per example `[batch]`, to be
 * maximised; labels and targets are int32 `[batch]`. Caller owns the result.
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';

const TINY = 1e-12;

/**
 * The `n` largest logits per example, in order: n `[batch]` tensors. tfjs has no TopK gradient,
 * so each is a max over the logits with the larger ones masked out (ArgMax and OneHot have
 * gradients, zero), which is differentiable in the logits.
 */
function largestLogits(logits: tf.Tensor2D, n: number): tf.Tensor1D[] {
  const k = logits.shape[1];
  const out: tf.Tensor1D[] = [];
  let masked: tf.Tensor2D = logits;
  for (let r = 0; r < n; r++) {
    out.push(tf.max(masked, 1));
    const top = tf.cast(tf.oneHot(tf.argMax(masked, 1), k), 'bool');
    masked = tf.where(top, tf.fill(logits.shape, -Infinity), masked);
  }
  return out;
}

/** z_label per example. */
function pick(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.sum(tf.mul(tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]), logits), 1);
}

function checkClasses(fn: string, logits: tf.Tensor2D, needed: number): void {
  check(
    logits.rank === 2 && logits.shape[1] >= needed,
    () => `${fn}: needs logits [batch, >= ${needed} classes], got [${logits.shape}]`,
    'UNSUPPORTED',
  );
}

/** Untargeted DLR (needs >= 3 classes). */
export function dlrLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  checkClasses('dlrLoss', logits, 3);
  return tf.tidy(() => {
    const [first, , third] = largestLogits(logits, 3);
    const isLabel = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]), 'bool');
    const others = tf.max(tf.where(isLabel, tf.fill(logits.shape, -Infinity), logits), 1);
    const scale = tf.add(tf.sub(first, third), TINY);
    return tf.neg(tf.div(tf.sub(pick(logits, labels), others), scale)) as tf.Tensor1D;
  });
}

/** Targeted DLR towards `targets` (needs >= 4 classes). */
export function dlrTargetedLoss(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  targets: tf.Tensor1D,
): tf.Tensor1D {
  checkClasses('dlrTargetedLoss', logits, 4);
  return tf.tidy(() => {
    const [first, , third, fourth] = largestLogits(logits, 4);
    const scale = tf.add(tf.sub(first, tf.mul(tf.add(third, fourth), 0.5)), TINY);
    const gap = tf.sub(pick(logits, labels), pick(logits, targets));
    return tf.neg(tf.div(gap, scale)) as tf.Tensor1D;
  });
}
