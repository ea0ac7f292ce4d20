/**
 * The one interface every attack, defense and certifier needs (DESIGN.md, "Core interfaces").
 * Inputs are NHWC batches `[batch, ...inputShape]` with values in `bounds`; any normalisation
 * (per-channel mean/std) happens inside `logits`, so attacks work in input space.
 */
import type * as tf from '@tensorflow/tfjs-core';

export interface Classifier {
  /** Shape of one example, e.g. [28, 28, 1]. */
  readonly inputShape: number[];
  readonly numClasses: number;
  /** Valid input range; attacks clip into it. */
  readonly bounds: [number, number];
  /** Pre-softmax scores `[batch, numClasses]`, differentiable in x. Caller owns the result. */
  logits(x: tf.Tensor): tf.Tensor2D;
  /**
   * A native runtime computing the same logits and input gradients faster (ONNX Runtime), when
   * the classifier was loaded with one. `logits` already runs on it (its input gradient through
   * the engine's vector-Jacobian product); attacks use its fused loss gradients directly.
   */
  readonly engine?: NativeEngine;
}

/**
 * A native runtime behind a classifier: its logits and vector-Jacobian products, synchronously
 * (like tfjs ops; src/engine/ort/session.ts says how). Results are not differentiable.
 */
export interface NativeEngine {
  readonly name: string;
  /** Logits `[batch, numClasses]` for x (`[batch, ...inputShape]`). Caller owns the result. */
  logits(x: tf.Tensor): tf.Tensor2D;
  /** ∇ₓ Σ (cotangent ⊙ logits(x)), x's shape. Caller owns the result. */
  vjp(x: tf.Tensor, cotangent: tf.Tensor2D): tf.Tensor;
  /**
   * ∇ₓ of an attack objective in one run: 'ce' (cross-entropy minus `marginWeight` × the margin)
   * or 'margin' (the negated margin) of `goal`, ascended, or descended when `targeted`.
   */
  lossGradient(
    x: tf.Tensor,
    goal: tf.Tensor1D,
    loss: { kind: 'ce' | 'margin'; marginWeight: number; targeted: boolean },
  ): tf.Tensor;
  /** Releases the runtime's sessions. */
  dispose(): void;
}

/** Black-box access: answers queries only (a local ONNX session, an HTTP service, ...). */
export interface QueryClassifier {
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly bounds: [number, number];
  /** Probabilities `[batch, numClasses]` (or one-hot labels for decision-only access). */
  predict(x: tf.Tensor): Promise<tf.Tensor2D>;
}
