/**
 * What every evasion attack returns, whatever its family (gradient, score-based, decision-based,
 * minimum-norm, universal). One shape lets the registry be a plain list and lets evaluation and
 * reports read any attack the same way.
 */
import * as tf from '@tensorflow/tfjs-core';

export interface AttackResult {
  /** Adversarial batch `[batch, ...inputShape]`, inside the threat model and the model's bounds. */
  xAdv: tf.Tensor;
  /** Per example `[batch]` (int32): the model's prediction on `xAdv`. */
  predictions: tf.Tensor1D;
  /** Per example `[batch]` (bool): the attack reached its goal (misclassified, or the target). */
  success: tf.Tensor1D;
  /** Per example `[batch]`: ‖xAdv − x‖ in the attack's norm. */
  perturbationNorms: tf.Tensor1D;
  /** Forward + backward passes over the whole batch. */
  gradientEvaluations: number;
  /** Forward-only queries per example, on average (black-box attacks; 0 for white-box ones). */
  queries: number;
  /** The seed the attack drew its randomness from. */
  seed: number;
  /** Ensembles: per example, the member that broke it ('clean', or null when it stayed robust). */
  brokenBy?: (string | null)[];
}

/** Frees every tensor of a result. */
export function disposeAttackResult(r: AttackResult): void {
  tf.dispose([r.xAdv, r.predictions, r.success, r.perturbationNorms]);
}

/** What a caller may pass to any attack when running it on a batch. */
export interface AttackRunOptions {
  /** Required when the attack is targeted: the classes to reach, `[batch]`. */
  targetLabels?: tf.Tensor1D;
  /** Checked between iterations; aborting rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Hears the work done so far: iterations or queries, out of `total`. */
  onProgress?: (done: number, total: number) => void;
}
