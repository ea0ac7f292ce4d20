/**
 * Second derivatives through a network, for the regularisers that penalise an input gradient
 * (double backpropagation). tfjs differentiates a gradient only when every op of the first
 * backward pass has a registered gradient itself, and only through the tensors a gradient saved
 * from the op's *inputs*: a gradient that reuses the op's saved *output* (Exp, Softmax, Sigmoid,
 * Tanh, Sqrt, ...) is traced as a constant, so its second-order term is silently dropped (the
 * engine clones the output before the op's tape node exists). Measured on tfjs 4.22 (cpu and
 * wasm) and checked against finite differences: Dense and Conv2D with linear or ReLU
 * activations, Flatten, Reshape and Dropout are exact; the pooling layers fail (no gradient for
 * the MaxPoolGrad / AvgPoolGrad kernels); saturating activations fall in the silent case above.
 * So the regularisers accept an allow-list of layers and refuse anything else by name, and they
 * write the input gradient of cross-entropy without differentiating softmax's backward pass.
 * `Equal` (inside the gradient of Max) has no gradient either; its output is boolean, so a zero
 * gradient is exact and is registered here.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../../errors.js';
import type { LossFn } from '../../train/steps.js';
import { CostMeter, type RobustTraining } from './adversarial.js';

/** Layer classes whose backward pass tfjs differentiates exactly (see above). */
const TWICE_DIFFERENTIABLE = new Set([
  'InputLayer',
  'Dense',
  'Conv2D',
  'Flatten',
  'Reshape',
  'Dropout',
]);
/** Activations whose derivative is taken from the layer's input, not its output. */
const ACTIVATIONS = new Set(['linear', 'relu']);

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
    const activation = (layer.getConfig() as { activation?: unknown }).activation;
    const why = !TWICE_DIFFERENTIABLE.has(cls)
      ? 'tfjs cannot differentiate its gradient exactly'
      : typeof activation === 'string' && !ACTIVATIONS.has(activation)
        ? `activation '${activation}' is not differentiated twice exactly by tfjs`
        : undefined;
    if (why) {
      throw new ParryError(
        'UNSUPPORTED',
        `${method}: layer '${layer.name}' (${cls}) cannot be used with double backpropagation: ${why}; supported: Dense/Conv2D with linear or relu activation, Flatten, Reshape, Dropout (e.g. the mlp or cnn-tiny architectures)`,
      );
    }
  }
}

/**
 * A regulariser that differentiates twice, for `trainModel`: registers the second-order gradients,
 * refuses (UNSUPPORTED, at the first batch) a model tfjs cannot differentiate twice, and counts
 * `gradientsPerExample` network passes per example for each batch.
 */
export function secondOrderMethod<C>(
  name: string,
  config: C,
  gradientsPerExample: number,
  loss: LossFn,
): RobustTraining & { config: C } {
  registerSecondOrderGradients();
  const cost = new CostMeter();
  const checked = new WeakSet<tfl.LayersModel>();
  return {
    config,
    cost,
    lossFn: (model, x, labels, progress, prepared) => {
      if (!checked.has(model)) {
        checkTwiceDifferentiable(model, name);
        checked.add(model);
      }
      cost.seen(x.shape[0]);
      cost.add(x.shape[0], gradientsPerExample);
      return loss(model, x, labels, progress, prepared);
    },
  };
}
