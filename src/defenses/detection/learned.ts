/**
 * A learned binary detector (in the spirit of Metzen et al. 2017 and Grosse et al. 2017, but on
 * fixed activations): a one-hidden-layer MLP separating clean (0) from adversarial (1) examples
 * on the model's standardised penultimate activations, trained full-batch with Adam on the
 * logistic loss (`hidden: 0` gives a plain logistic regression). Supervised: `fit` needs `advX`
 * (crafted by the attack the detector should catch). Score = the output logit; differentiable
 * ('exact'). Weights are seeded.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import { type FeatureModel, featureModel, readFeatures } from '../../models/features.js';
import { BaseDetector, fitted } from './detector.js';
import { arrayOf, type DetectorState, type SavableDetector, stateTensor } from './fitted-state.js';

export interface LearnedConfig {
  /** Hidden ReLU units; 0 = logistic regression. */
  hidden: number;
  steps: number;
  learningRate: number;
  /** L2 penalty on the weights. */
  l2: number;
  seed: number;
}

export class LearnedDetector extends BaseDetector implements SavableDetector {
  readonly name = 'learned';
  readonly gradient = 'exact' as const;
  private readonly config: LearnedConfig;
  private fm?: FeatureModel;
  private params: tf.Variable[] = [];
  private mean?: tf.Tensor1D;
  private std?: tf.Tensor1D;

  constructor(config: Partial<LearnedConfig> = {}) {
    super();
    this.config = { hidden: 32, steps: 300, learningRate: 0.01, l2: 1e-4, seed: 1, ...config };
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
    this.dispose();
    this.fm = fm;
    const rows = new Float32Array((n0 + n1) * d);
    rows.set(clean);
    rows.set(bad, n0 * d);
    const f = tf.tensor2d(rows, [n0 + n1, d]);
    const y = tf.tensor2d(new Float32Array(n0 + n1).fill(1, n0), [n0 + n1, 1]);
    const moments = tf.moments(f, 0);
    this.mean = tf.keep(moments.mean as tf.Tensor1D);
    this.std = tf.keep(tf.tidy(() => tf.maximum(tf.sqrt(moments.variance), 1e-6)) as tf.Tensor1D);
    moments.variance.dispose();
    const rng = new Rng(this.config.seed);
    const { hidden, l2 } = this.config;
    const glorot = (a: number, b: number) =>
      tf.variable(tf.randomNormal([a, b], 0, Math.sqrt(2 / (a + b)), 'float32', rng.nextSeed()));
    this.params =
      hidden > 0
        ? [
            glorot(d, hidden),
            tf.variable(tf.zeros([hidden])),
            glorot(hidden, 1),
            tf.variable(tf.zeros([1])),
          ]
        : [glorot(d, 1), tf.variable(tf.zeros([1]))];
    const optimizer = tf.train.adam(this.config.learningRate);
    try {
      for (let t = 0; t < this.config.steps; t++) {
        const cost = optimizer.minimize(
          () => {
            const logits = this.forward(f);
            // Logistic loss, stable: relu(z) − z·y + log(1 + e^{−|z|}).
            const loss = tf.mean(
              tf.add(
                tf.sub(tf.relu(logits), tf.mul(logits, y)),
                tf.log1p(tf.exp(tf.neg(tf.abs(logits)))),
              ),
            );
            const penalty = tf.addN(
              this.params.filter((p) => p.rank === 2).map((p) => tf.sum(tf.square(p))),
            );
            return tf.add(loss, tf.mul(penalty, l2)) as tf.Scalar;
          },
          true,
          this.params,
        );
        cost?.dispose();
      }
    } finally {
      optimizer.dispose();
      tf.dispose([f, y]);
    }
  }

  scoreTensor(x: tf.Tensor): tf.Tensor1D {
    const fm = fitted('learned', this.fm);
    return tf.tidy(
      () =>
        tf.reshape(
          this.forward(fm.activations(x, [fm.penultimate]).features[0]),
          [-1],
        ) as tf.Tensor1D,
    );
  }

  /** The standardisation `mean`, `std` [d] and the weights `params.<i>` (W1, b1, W2, b2 or W, b). */
  exportState(): DetectorState {
    const mean = fitted('learned', this.mean);
    const params = Object.fromEntries(this.params.map((p, i) => [`params.${i}`, arrayOf(p)]));
    return {
      config: { ...this.config },
      values: {},
      arrays: { mean: arrayOf(mean), std: arrayOf(this.std!), ...params },
      models: {},
    };
  }

  restoreState(model: Classifier, state: DetectorState): void {
    const fm = featureModel(model);
    const h = this.config.hidden;
    const kept: tf.Tensor[] = [];
    const take = (key: string, shape: (number | null)[]) => {
      const t = stateTensor('learned', state, key, shape);
      kept.push(t);
      return t;
    };
    try {
      const mean = take('mean', [null]) as tf.Tensor1D;
      const d = mean.shape[0];
      const std = take('std', [d]) as tf.Tensor1D;
      const shapes = h > 0 ? [[d, h], [h], [h, 1], [1]] : [[d, 1], [1]];
      const values = shapes.map((shape, i) => take(`params.${i}`, shape));
      const params = values.map((v) => tf.variable(v));
      tf.dispose(values);
      this.dispose();
      this.fm = fm;
      this.mean = mean;
      this.std = std;
      this.params = params;
    } catch (e) {
      tf.dispose(kept);
      throw e;
    }
  }

  dispose(): void {
    tf.dispose([
      ...this.params,
      ...([this.mean, this.std].filter((t) => t != null) as tf.Tensor[]),
    ]);
    this.params = [];
    this.mean = undefined;
    this.std = undefined;
  }

  /** Logits `[batch, 1]` of raw features `[batch, d]`. */
  private forward(f: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      let h = tf.div(tf.sub(f, this.mean!), this.std!) as tf.Tensor2D;
      const p = this.params;
      if (p.length === 4)
        h = tf.relu(tf.add(tf.matMul(h, p[0] as tf.Tensor2D), p[1])) as tf.Tensor2D;
      const [w, b] = p.slice(-2);
      return tf.add(tf.matMul(h, w as tf.Tensor2D), b) as tf.Tensor2D;
    });
  }
}
