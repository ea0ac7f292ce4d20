/**
 * Input-gradient regularisation by double backpropagation (Drucker & LeCun 1992; Ross &
 * Doshi-Velez, "Improving the Adversarial Robustness and Interpretability of Deep Neural
 * Networks by Regularizing their Input Gradients", AAAI 2018). Per example:
 *   L = CE(f(x), y) + λ·‖∇_x CE(f(x), y)‖₂²,
 * differentiated w.r.t. the weights through the input gradient (second derivatives; see
 * second-order.ts for the layers tfjs supports). For logits = Wx + b the input gradient is
 * W^T(softmax − onehot), which the tests check.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { crossEntropy } from '../../objectives/losses.js';
import { parseWith } from '../../options.js';
import type { RobustTraining } from './adversarial.js';
import { secondOrderMethod } from './second-order.js';

export const inputGradientConfigSchema = z
  .object({
    /** Weight λ of the squared gradient norm. */
    lambda: z.number().min(0),
  })
  .strict();
export type InputGradientConfig = z.infer<typeof inputGradientConfigSchema>;

/** Per-example squared norms `[batch]` of a batch of gradients `[batch, ...]`. */
export function squaredNorms(g: tf.Tensor): tf.Tensor1D {
  return tf.tidy(() => tf.sum(tf.square(tf.reshape(g, [g.shape[0], -1])), 1) as tf.Tensor1D);
}

/**
 * The per-example loss `[batch]` and the logits. Examples must not interact in the forward pass
 * (true in inference mode; batch-norm in training mode couples them slightly).
 */
export function inputGradientLoss(
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  lambda: number,
  training = true,
): { loss: tf.Tensor1D; logits: tf.Tensor2D } {
  return tf.tidy(() => {
    const logits = model.apply(x, { training }) as tf.Tensor2D;
    const ce = crossEntropy(logits, labels);
    if (lambda === 0) return { loss: ce, logits };
    // ∇_x CE = J^T r with r = softmax(z) − onehot: the input gradient of Σ r·z(x) with r held
    // fixed inside the inner gradient but a function of the weights outside it. Written this way
    // the weight gradient never differentiates the backward pass of exp / softmax, whose saved
    // outputs tfjs does not trace a second time (see second-order.ts). The inner gradient is
    // taken at a copy of x: tfjs keeps one tape for nested gradients, and r depends on x itself.
    const r = tf.sub(tf.softmax(logits), tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]));
    const grad = tf.grad((z: tf.Tensor) =>
      tf.sum(tf.mul(r, model.apply(z, { training }) as tf.Tensor2D)),
    )(tf.clone(x));
    return { loss: tf.add(ce, tf.mul(squaredNorms(grad), lambda)) as tf.Tensor1D, logits };
  });
}

/**
 * Double backpropagation for `trainModel`. Throws UNSUPPORTED at the first batch when the model
 * has a layer tfjs cannot differentiate twice.
 */
export function createInputGradientRegularizer(
  config: z.input<typeof inputGradientConfigSchema>,
): RobustTraining & { config: InputGradientConfig } {
  const c = parseWith('inputGradient', inputGradientConfigSchema, config);
  // The input gradient, then the training backward through it (≈ two more passes).
  return secondOrderMethod('inputGradient', c, 3, (model, x, labels) =>
    inputGradientLoss(model, x, labels, c.lambda),
  );
}
