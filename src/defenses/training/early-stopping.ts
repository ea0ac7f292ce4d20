/**
 * Early stopping on held-out robust accuracy (Rice, Wong & Kolter, "Overfitting in
 * adversarially robust deep learning", 2020): robust test accuracy peaks soon after a learning
 * rate decay and then falls while training robust accuracy keeps rising, so keep the weights of
 * the epoch with the best held-out robust accuracy and restore them at the end. `patience`
 * epochs without improvement stop training (Infinity: never stop, only restore).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

export class BestCheckpoint {
  private weights: tf.Tensor[] | undefined;
  private bestScore = Number.NEGATIVE_INFINITY;
  private sinceBest = 0;
  bestEpoch = 0;

  constructor(
    private readonly model: tfl.LayersModel,
    private readonly patience = Number.POSITIVE_INFINITY,
  ) {}

  /** Records the epoch's score; snapshots the weights when it is the best so far. */
  update(epoch: number, score: number): { best: boolean; stop: boolean } {
    if (score > this.bestScore) {
      this.bestScore = score;
      this.bestEpoch = epoch;
      this.sinceBest = 0;
      if (this.weights) tf.dispose(this.weights);
      this.weights = this.model.getWeights().map((w) => tf.clone(w));
      return { best: true, stop: false };
    }
    this.sinceBest++;
    return { best: false, stop: this.sinceBest >= this.patience };
  }

  get best(): number {
    return this.bestScore;
  }

  /** Writes the best epoch's weights back into the model and frees the snapshot. */
  restore(): void {
    if (this.weights) this.model.setWeights(this.weights);
    this.dispose();
  }

  dispose(): void {
    if (this.weights) tf.dispose(this.weights);
    this.weights = undefined;
  }
}
