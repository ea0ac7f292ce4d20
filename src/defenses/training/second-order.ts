/**
 * Second derivatives through a network, for the regularisers that penalise an input gradient
 * (double backpropagation). tfjs differentiates a gradient only when every op of the first
 * backward pass has a registered gradient itself. Measured on tfjs 4.22 (cpu and wasm):
 * Dense, Conv2D (strided or not), ReLU, Flatten, Dropout and BatchNormalization work; the
 * pooling layers do not (no gradient for the MaxPoolGrad / AvgPoolGrad kernels), and the
 * comparison `Equal` (in the gradient of Max, hence of logSumExp and cross-entropy) has none.
 * `Equal`'s output is boolean, so its gradient is zero wherever it is defined: registering that
 * is exact. tf.logSoftmax is a custom-gradient op whose gradient is not differentiated again
 * (its second-order term is silently dropped), so these losses use crossEntropy (logSumExp).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../../errors.js';

/** Layer classes whose backward pass tfjs cannot differentiate again. */
const NOT_TWICE_DIFFERENTIABLE = new Set([
  'MaxPooling1D',
  'MaxPooling2D',
  'MaxPooling3D',
  'AveragePooling1D',
  'AveragePooling2D',
  'AveragePooling3D',
]);

/** Zero gradients for comparison kernels that appear inside first-order gradients. */
export function registerSecondOrderGradients(): void {
  for (const kernelName of ['Equal', 'NotEqual', 'Greater', 'GreaterEqual', 'Less', 'LessEqual']) {
    if (tf.getGradient(kernelName) != null) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, saved) => {
        const [a, b] = saved as tf.Tensor[];
        return { a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) };
      },
    });
  }
}

/** Throws UNSUPPORTED naming the first layer whose gradient cannot be differentiated. */
export function checkTwiceDifferentiable(model: tfl.LayersModel, method: string): void {
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (NOT_TWICE_DIFFERENTIABLE.has(cls)) {
      throw new ParryError(
        'UNSUPPORTED',
        `${method}: layer '${layer.name}' (${cls}) cannot be differentiated twice on tfjs (no gradient for its gradient kernel); use an architecture without pooling layers (e.g. mlp, cnn-tiny)`,
      );
    }
  }
}
