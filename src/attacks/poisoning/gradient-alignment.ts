/**
 * The objective of gradient matching (Witches' Brew, Geiping et al. 2021), apart from the attack
 * so it can be checked on its own: the alignment loss 1 − cos(∇θ L(poisons), ∇θ L(targets →
 * intended class)), differentiable in the poisons — a second derivative through the parameter
 * gradient. tfjs (4.22) gets second derivatives wrong in two ways this file works around or
 * refuses: it has no gradient for some first-order gradient ops (Conv2DBackpropFilter, Equal in
 * Max's gradient), and it loses the path through an op's saved output (see `expFromInput`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { featureModel } from '../../models/features.js';

/** A differentiable model with the weights whose training gradient is matched. */
export interface ParameterModel {
  readonly params: tf.Variable[];
  /** Inference-mode logits through the layers themselves (never a native engine). */
  logits(x: tf.Tensor): tf.Tensor2D;
}

/** The ParameterModel of a TfjsClassifier around a Sequential LayersModel. */
export function parameterModel(model: Classifier, which: 'dense' | 'all'): ParameterModel {
  const fm = featureModel(model);
  const layers =
    which === 'all' ? fm.layers : fm.layers.filter((l) => l.getClassName() === 'Dense');
  const other = fm.layers.find(
    (l) => l.getClassName() !== 'Dense' && l.trainableWeights.length > 0,
  );
  if (which === 'all' && other !== undefined) {
    throw new ParryError(
      'UNSUPPORTED',
      `gradient-matching: params 'all' needs second derivatives through layer '${other.name}' (${other.getClassName()}), which tfjs lacks; use params 'dense'`,
    );
  }
  const params = layers.flatMap((l: tfl.layers.Layer) =>
    l.trainableWeights.map((w) => w.read() as tf.Variable),
  );
  if (params.length === 0) {
    throw new ParryError(
      'UNSUPPORTED',
      'gradient-matching: the model has no Dense weights to match',
    );
  }
  const first = fm.layers.findIndex((l) => layers.includes(l) && l.trainableWeights.length > 0);
  checkSecondOrder(fm.layers.slice(first));
  return {
    params,
    logits: (x) =>
      tf.tidy(() => {
        const r = fm.activations(x, []);
        return r.logits;
      }),
  };
}

/** Layers and activations whose gradients tfjs differentiates correctly a second time. */
const SECOND_ORDER_LAYERS = ['Dense', 'Dropout', 'Flatten', 'Reshape', 'Activation'];
const SECOND_ORDER_ACTIVATIONS = ['relu', 'linear', 'softplus'];

/**
 * The matched layers and every layer after them must be differentiable twice in tfjs: Dense,
 * Dropout, Flatten, Reshape, Activation, with relu, linear or softplus activations (see
 * `expFromInput` for why tanh, sigmoid and softmax are not). UNSUPPORTED naming the layer.
 */
function checkSecondOrder(layers: readonly tfl.layers.Layer[]): void {
  for (const l of layers) {
    const activation = l.getConfig().activation;
    const ok =
      SECOND_ORDER_LAYERS.includes(l.getClassName()) &&
      (activation === undefined || SECOND_ORDER_ACTIVATIONS.includes(String(activation)));
    if (!ok) {
      throw new ParryError(
        'UNSUPPORTED',
        `gradient-matching: layer '${l.name}' (${l.getClassName()}${activation ? `, ${String(activation)}` : ''}) follows a matched layer but has no correct second derivative in tfjs (supported: ${SECOND_ORDER_LAYERS.join(', ')} with ${SECOND_ORDER_ACTIVATIONS.join(', ')})`,
      );
    }
  }
}

/**
 * exp whose gradient is computed from its input. tfjs (4.22) records the copy of an op's saved
 * output on the tape before the op itself, so a second derivative through a gradient that reads
 * a saved output (exp, tanh, sigmoid, softmax, logSoftmax) silently loses that path; gradients
 * that read saved inputs are differentiated correctly.
 */
const expFromInput = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  return {
    value: tf.exp(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.exp(saved[0])),
  };
}) as (x: tf.Tensor) => tf.Tensor;

/** Row maxima `[n, 1]` as a constant: their gradient is zero (no Max gradient, which uses Equal). */
const constantRowMax = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const z = args[0] as tf.Tensor;
  return { value: tf.max(z, 1, true), gradFunc: () => tf.zeros(z.shape) };
}) as (z: tf.Tensor) => tf.Tensor;

/**
 * Mean softmax cross-entropy, logsumexp(z) − z_y, written so tfjs differentiates it twice
 * correctly: shifted by the row maximum held constant (the value and the gradient do not depend
 * on the shift), exp differentiated from its input.
 */
export function trainingLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const m = constantRowMax(logits);
    const lse = tf.add(tf.log(tf.sum(expFromInput(tf.sub(logits, m)), 1)), tf.reshape(m, [-1]));
    const picked = tf.sum(tf.mul(tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]), logits), 1);
    return tf.mean(tf.sub(lse, picked)) as tf.Scalar;
  });
}

/** ∇θ mean L(f(x; θ), labels) for the matched weights, in `pm.params` order. Caller owns them. */
export function parameterGradient(
  pm: ParameterModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
): tf.Tensor[] {
  return tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => trainingLoss(pm.logits(x), labels), pm.params);
    value.dispose();
    return pm.params.map((v) => grads[v.name]);
  });
}

/**
 * Witches' Brew's alignment loss 1 − cos(∇θ L(f(x), labels), targetGrad): differentiable in x
 * (second order: the gradient flows through the parameter gradient). Pure; caller owns it.
 */
export function alignmentLoss(
  pm: ParameterModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  targetGrad: readonly tf.Tensor[],
): tf.Scalar {
  return tf.tidy(() => {
    const g = parameterGradient(pm, x, labels);
    const dot = tf.addN(g.map((gi, i) => tf.sum(tf.mul(gi, targetGrad[i]))));
    const gg = tf.addN(g.map((gi) => tf.sum(tf.square(gi))));
    const tt = tf.addN(targetGrad.map((ti) => tf.sum(tf.square(ti))));
    return tf.sub(1, tf.div(dot, tf.mul(tf.sqrt(gg), tf.sqrt(tt)))) as tf.Scalar;
  });
}
