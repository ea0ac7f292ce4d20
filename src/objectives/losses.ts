/**
 * Classification losses on logits. Labels are int32 class indices `[batch]`.
 * All return per-example losses `[batch]`; callers reduce. Caller owns the result.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Softmax cross-entropy, computed stably as logsumexp(z) - z_y. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), k);
    const lse = tf.logSumExp(logits, 1);
    return tf.sub(lse, tf.sum(tf.mul(oneHot, logits), 1)) as tf.Tensor1D;
  });
}

/** Label-smoothed cross-entropy: targets (1 - s)·onehot + s/K. */
export function smoothedCrossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  smoothing: number,
): tf.Tensor1D {
  if (smoothing === 0) return crossEntropy(logits, labels);
  return tf.tidy(() => {
    const k = logits.shape[1];
    const target = tf.add(
      tf.mul(tf.oneHot(tf.cast(labels, 'int32'), k), 1 - smoothing),
      smoothing / k,
    );
    return tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
  });
}

/** KL(p ‖ q) between the softmax distributions of two logit batches. */
export function klDivergence(logitsP: tf.Tensor2D, logitsQ: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    const logP = tf.logSoftmax(logitsP);
    const logQ = tf.logSoftmax(logitsQ);
    return tf.sum(tf.mul(tf.exp(logP), tf.sub(logP, logQ)), 1) as tf.Tensor1D;
  });
}

/** Margin z_y - max_{j≠y} z_j (negative when misclassified): the C&W / certification margin. */
export function margin(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => {
    const k = logits.shape[1];
    const oneHot = tf.oneHot(tf.cast(labels, 'int32'), k);
    const zy = tf.sum(tf.mul(oneHot, logits), 1);
    // Push the true class far down so max picks the best other class.
    const others = tf.max(tf.sub(logits, tf.mul(oneHot, 1e9)), 1);
    return tf.sub(zy, others) as tf.Tensor1D;
  });
}

/** Number of correct predictions in a batch, as a scalar int32 tensor. */
export function countCorrect(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() =>
    tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(labels, 'int32')), 'int32')),
  );
}
