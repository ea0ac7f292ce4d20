/**
 * The per-batch hooks a training run is built from: a loss and an optional preparation step
 * (e.g. crafting adversarial examples). Shared by the loop (loop.ts) and its data-parallel
 * step (parallel.ts), which otherwise know nothing of each other's internals.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

export interface TrainProgress {
  /** Optimizer steps taken before this one (0-based). */
  step: number;
  totalSteps: number;
}

/**
 * Per-batch loss: returns the per-example loss `[batch]` and the logits used for accuracy.
 * `progress` lets a robust-training loss follow a schedule over the run. `prepared` is what the
 * `prepare` hook returned for this batch (e.g. its adversarial examples), a constant here.
 */
export type LossFn = (
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  progress: TrainProgress,
  prepared?: tf.Tensor,
) => { loss: tf.Tensor1D; logits: tf.Tensor2D };

/**
 * Runs before the optimizer records the batch loss, outside its gradient tape: what it returns
 * is a constant for the weight gradient (adversarial training treats x_adv as data, Madry et al.
 * 2018) and the attack's intermediate tensors are not kept alive by the tape. Returns a tensor
 * the step disposes.
 */
export type PrepareFn = (
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  progress: TrainProgress,
) => tf.Tensor;

/**
 * A step that draws its own batch and computes its own update, in place of the loop's shuffled
 * batches and loss gradient (differentially private SGD: Poisson sampling, clipped and noised
 * per-example gradients). The loop still applies the update with its optimizer, learning-rate
 * schedule and weight decay, and keeps the bookkeeping (progress, loss, accuracy).
 */
export interface GradientStep {
  /** Indices into the training set of this step's batch (any count, 0 included). */
  sample(n: number, progress: TrainProgress): Int32Array;
  /**
   * The update direction for the batch, keyed by variable name (what `optimizer.applyGradients`
   * takes), the batch's summed loss and its correct count (0 for an empty batch). Caller owns all.
   */
  gradients(
    model: tfl.LayersModel,
    x: tf.Tensor,
    labels: tf.Tensor1D,
    progress: TrainProgress,
  ): { grads: tf.NamedTensorMap; lossSum: tf.Scalar; correct: tf.Scalar };
}
