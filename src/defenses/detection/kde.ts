/**
 * Kernel density + Bayesian uncertainty detector (Feinman, Curtin, Shintre & Gardner 2017,
 * "Detecting adversarial samples from artifacts"). In the last hidden layer f:
 *   log K(x) = log( (1/|X_t|) Σ_{x_i ∈ X_t} exp(−‖f(x) − f(x_i)‖² / σ²) ),
 * X_t the clean reference points of the class t the model predicts for x; and the MC-dropout
 * variance U(x) = (1/T) Σ_t p_tᵀp_t − p̄ᵀp̄ over T dropout samples of the softmax p. A logistic
 * regression on [log K, U] (clean and noisy = 0, adversarial = 1) gives the score.
 * A model without Dropout layers has U ≡ 0 (the feature is constant and the regression ignores
 * it). σ defaults to the median distance between same-class reference points (the paper tuned it
 * per data set). The first half of the clean fit examples are the reference, the rest train the
 * regression (a point's own kernel would inflate its density). Gradient 'exact' (stochastic
 * when MC dropout is on).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { type FeatureModel, featureModel, readFeatures } from '../../models/features.js';
import { BaseDetector, fitted, gaussianNoise, SCORE_BATCH, sliceRows } from './detector.js';
import {
  arrayOf,
  type DetectorState,
  logisticFromState,
  logisticState,
  type SavableDetector,
  stateTensor,
  stateValue,
} from './fitted-state.js';
import { pairwiseDistances } from './lid.js';
import { DEFAULT_LOGISTIC, fitLogistic, type LogisticModel, logisticLogit } from './logistic.js';

export interface KdeConfig {
  /** Kernel bandwidth σ; default: median reference distance. */
  bandwidth?: number;
  /** MC-dropout samples T (used only when the model has Dropout layers). */
  mcSamples: number;
  noiseStd: number;
  seed: number;
}

export class KdeDetector extends BaseDetector implements SavableDetector {
  readonly name = 'kde';
  readonly gradient = 'exact' as const;
  private readonly config: KdeConfig;
  private fm?: FeatureModel;
  private refs?: tf.Tensor2D;
  /** One-hot reference labels `[m, numClasses]`. */
  private refLabels?: tf.Tensor2D;
  private sigma = 1;
  private lr?: LogisticModel;

  constructor(config: Partial<KdeConfig> = {}) {
    super();
    this.config = { mcSamples: 20, noiseStd: 0.05, seed: 1, ...config };
  }

  get bandwidth(): number {
    return this.sigma;
  }

  async fit(
    model: Classifier,
    cleanX: tf.Tensor,
    cleanLabels?: tf.Tensor1D,
    advX?: tf.Tensor,
  ): Promise<void> {
    const labels = fitted('kde.fit: cleanLabels', cleanLabels);
    const adv = fitted('kde.fit: advX', advX);
    const n = cleanX.shape[0];
    check(n >= 4, () => `kde.fit: need at least 4 clean examples, got ${n}`);
    const m = Math.floor(n / 2);
    const fm = featureModel(model);
    this.dispose();
    this.fm = fm;
    const ref = sliceRows(cleanX, 0, m);
    const f = readFeatures(fm, ref, fm.penultimate);
    ref.dispose();
    this.refs = tf.keep(tf.tensor2d(Float32Array.from(f), [m, f.length / m]));
    this.refLabels = tf.keep(
      tf.tidy(
        () =>
          tf.cast(
            tf.oneHot(tf.cast(tf.slice(labels, [0], [m]), 'int32'), model.numClasses),
            'float32',
          ) as tf.Tensor2D,
      ),
    );
    this.sigma =
      this.config.bandwidth ?? medianDistance(this.refs, Int32Array.from(labels.dataSync()));
    const rest = sliceRows(cleanX, m, n - m);
    const noisy = gaussianNoise(rest, this.config.noiseStd, model.bounds, this.config.seed);
    const parts = [rest, noisy, adv].map((x) => this.readKdeFeatures(x));
    tf.dispose([rest, noisy]);
    const rows = new Float64Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) {
      rows.set(p, o);
      o += p.length;
    }
    const y = new Float64Array(rows.length / 2).fill(1, (parts[0].length + parts[1].length) / 2);
    this.lr = fitLogistic(rows, y, 2, DEFAULT_LOGISTIC);
  }

  /** [log K(x), U(x)] `[batch, 2]`. Caller owns. */
  kdeFeatures(x: tf.Tensor): tf.Tensor2D {
    const fm = fitted('kde', this.fm);
    return tf.tidy(() => {
      const r = fm.activations(x, [fm.penultimate]);
      const d = pairwiseDistances(r.features[0], this.refs!);
      const pred = tf.cast(tf.oneHot(tf.argMax(r.logits, 1), this.refLabels!.shape[1]), 'float32');
      // 1 where the reference point has the predicted class. Built from argMax / oneHot / matMul
      // only (no comparison op), so the score stays differentiable in x (the mask's gradient is 0).
      const mask = tf.matMul(pred, this.refLabels!, false, true); // [batch, m]
      const logK = tf.sub(
        tf.logSumExp(
          tf.add(tf.div(tf.neg(tf.square(d)), this.sigma ** 2), tf.mul(tf.sub(mask, 1), 1e9)),
          1,
        ),
        tf.log(tf.maximum(tf.sum(mask, 1), 1)),
      );
      return tf.stack([logK, this.uncertainty(x)], 1) as tf.Tensor2D;
    });
  }

  scoreTensor(x: tf.Tensor): tf.Tensor1D {
    fitted('kde', this.lr);
    return tf.tidy(() => logisticLogit(this.lr!, this.kdeFeatures(x)));
  }

  /**
   * Reference activations `refs` [m, d], their one-hot classes `refLabels` [m, numClasses], the
   * bandwidth `sigma` and the regression `logistic.*`.
   */
  exportState(): DetectorState {
    const lr = fitted('kde', this.lr);
    const refs = fitted('kde', this.refs);
    const lrState = logisticState(lr, 'logistic');
    return {
      config: { ...this.config },
      values: { sigma: this.sigma, ...lrState.values },
      arrays: { refs: arrayOf(refs), refLabels: arrayOf(this.refLabels!), ...lrState.arrays },
      models: {},
    };
  }

  restoreState(model: Classifier, state: DetectorState): void {
    const fm = featureModel(model);
    const lr = logisticFromState('kde', state, 'logistic', 2);
    const sigma = stateValue('kde', state, 'sigma');
    const refs = stateTensor('kde', state, 'refs', [null, null]) as tf.Tensor2D;
    let refLabels: tf.Tensor2D;
    try {
      const shape = [refs.shape[0], model.numClasses];
      refLabels = stateTensor('kde', state, 'refLabels', shape) as tf.Tensor2D;
    } catch (e) {
      refs.dispose();
      throw e;
    }
    this.dispose();
    this.fm = fm;
    this.refs = refs;
    this.refLabels = refLabels;
    this.sigma = sigma;
    this.lr = lr;
  }

  dispose(): void {
    tf.dispose([this.refs, this.refLabels].filter((t) => t != null) as tf.Tensor[]);
    this.refs = undefined;
    this.refLabels = undefined;
  }

  /** MC-dropout variance `[batch]`; zeros without Dropout layers. */
  private uncertainty(x: tf.Tensor): tf.Tensor1D {
    const fm = this.fm!;
    const t = this.config.mcSamples;
    if (!fm.hasDropout || t < 2) return tf.zeros([x.shape[0]]);
    return tf.tidy(() => {
      // Sample k uses the same masks for every batch of a given size: the score is reproducible.
      const seeds = new Rng(this.config.seed);
      const probs = Array.from({ length: t }, () =>
        tf.softmax(fm.activations(x, [], { seed: seeds.nextSeed() }).logits),
      );
      const meanSq = tf.mean(tf.stack(probs.map((p) => tf.sum(tf.square(p), 1))), 0);
      const mean = tf.mean(tf.stack(probs), 0);
      return tf.sub(meanSq, tf.sum(tf.square(mean), 1)) as tf.Tensor1D;
    });
  }

  private readKdeFeatures(x: tf.Tensor): Float64Array {
    const out: number[] = [];
    for (let s = 0; s < x.shape[0]; s += SCORE_BATCH) {
      const size = Math.min(SCORE_BATCH, x.shape[0] - s);
      const f = tf.tidy(() => this.kdeFeatures(sliceRows(x, s, size)));
      out.push(...f.dataSync());
      f.dispose();
    }
    return Float64Array.from(out);
  }
}

/** Median distance between distinct reference rows of the same class (bandwidth heuristic). */
function medianDistance(refs: tf.Tensor2D, labels: Int32Array): number {
  const d = pairwiseDistances(refs, refs);
  const v = d.dataSync();
  d.dispose();
  const m = refs.shape[0];
  const off: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) if (labels[i] === labels[j]) off.push(v[i * m + j]);
  }
  off.sort((a, b) => a - b);
  const med = off.length > 0 ? off[off.length >> 1] : 1;
  return med > 0 ? med : 1;
}
