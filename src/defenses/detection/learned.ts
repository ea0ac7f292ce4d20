/**
 * A learned binary detector (in the spirit of Metzen et al. 2017 and Grosse et al. 2017, but on
 * fixed activations): an L2-regularised logistic regression separating clean from adversarial
 * examples on the model's penultimate activations. Supervised: `fit` needs `advX` (crafted by the
 * attack the detector should catch). Score = the regression's logit; differentiable ('exact').
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Classifier } from '../../models/classifier.js';
import { type FeatureModel, featureModel, readFeatures } from './activations.js';
import { BaseDetector, fitted } from './detector.js';
import {
  DEFAULT_LOGISTIC,
  fitLogistic,
  type LogisticConfig,
  type LogisticModel,
  logisticLogit,
} from './logistic.js';

export class LearnedDetector extends BaseDetector {
  readonly name = 'learned';
  readonly gradient = 'exact' as const;
  private fm?: FeatureModel;
  private lr?: LogisticModel;

  constructor(private readonly config: LogisticConfig = DEFAULT_LOGISTIC) {
    super();
  }

  async fit(
    model: Classifier,
    cleanX: tf.Tensor,
    _labels?: tf.Tensor1D,
    advX?: tf.Tensor,
  ): Promise<void> {
    const adv = fitted('learned.fit: advX', advX);
    const fm = featureModel(model);
    const clean = readFeatures(fm, cleanX, fm.penultimate);
    const bad = readFeatures(fm, adv, fm.penultimate);
    const n0 = cleanX.shape[0];
    const n1 = adv.shape[0];
    const d = clean.length / n0;
    const rows = new Float64Array((n0 + n1) * d);
    rows.set(clean);
    rows.set(bad, n0 * d);
    const y = new Float64Array(n0 + n1).fill(1, n0);
    this.lr = fitLogistic(rows, y, d, this.config);
    this.fm = fm;
  }

  scoreTensor(x: tf.Tensor): tf.Tensor1D {
    const fm = fitted('learned', this.fm);
    return tf.tidy(() => logisticLogit(this.lr!, fm.activations(x, [fm.penultimate]).features[0]));
  }

  dispose(): void {}
}
