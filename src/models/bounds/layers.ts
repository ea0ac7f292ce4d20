/**
 * The one layer walk shared by IBP and CROWN: a tfjs-layers model (plus the Classifier's input
 * normalisation) becomes a flat list of `Op`s, each one of a few kinds the bound rules know.
 *
 * A layer with an inline activation (Dense, Conv2D) becomes two ops, the affine part and the
 * activation; BatchNormalization (inference mode: moving statistics) and the normalisation
 * (x − mean) / std become one elementwise affine `scale` op; Dropout and other train-time noise
 * layers vanish (identity at inference). Only straight chains are supported (Sequential, nested
 * Sequential, or a functional model whose output depends on its input through one path);
 * anything else throws 'UNSUPPORTED' naming the layer's class and name. ONNX models take the
 * same ops (from-onnx.ts), with residual blocks as `residual` ops.
 *
 * Ops hold the layers' weight variables themselves (so bounds are differentiable w.r.t. the
 * weights, for certified training) and a few tensors derived from them: call `buildNetwork`
 * inside `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { TfjsClassifier } from '../tfjs-classifier.js';
import { onnxNetworkOf } from './from-onnx.js';
import {
  type ActivationFn,
  describe,
  type Network,
  type Op,
  type PoolGeometry,
  type Source,
  unsupported,
} from './ops.js';

export {
  type ActivationFn,
  describe,
  type ExplicitPadding,
  type Network,
  type Op,
  type PoolGeometry,
  type Source,
  sizeOf,
  unsupported,
} from './ops.js';

/** Train-time noise: the identity in inference mode. */
const IDENTITY_LAYERS = new Set([
  'Dropout',
  'SpatialDropout1D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
]);

const ACTIVATIONS: Record<string, ActivationFn | 'linear'> = {
  linear: 'linear',
  relu: 'relu',
  relu6: 'relu6',
  elu: 'elu',
  selu: 'selu',
  sigmoid: 'sigmoid',
  hardSigmoid: 'hardSigmoid',
  tanh: 'tanh',
  softplus: 'softplus',
  softsign: 'softsign',
};

type Config = Record<string, unknown>;
const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : [Number(v), Number(v)];

/** Applies the activation `fn` (as tfjs-layers defines it). Caller owns the result. */
export function applyActivation(fn: ActivationFn, alpha: number, x: tf.Tensor): tf.Tensor {
  switch (fn) {
    case 'relu':
      return tf.relu(x);
    case 'leakyRelu':
      return tf.leakyRelu(x, alpha);
    case 'relu6':
      return tf.minimum(6, tf.relu(x));
    case 'cappedRelu':
      return tf.clipByValue(x, 0, alpha);
    case 'elu':
      return tf.elu(x);
    case 'selu':
      return tf.selu(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'hardSigmoid':
      return tf.clipByValue(tf.add(tf.mul(x, 0.2), 0.5), 0, 1);
    case 'tanh':
      return tf.tanh(x);
    case 'softplus':
      return tf.softplus(x);
    case 'softsign':
      return tf.div(x, tf.add(tf.abs(x), 1));
  }
}

/** Reads a layer's weight variable by its short name ('kernel', 'gamma', ...). */
function weight(layer: tfl.layers.Layer, short: string): tf.Tensor | undefined {
  const w = layer.weights.find((v) => v.originalName.split('/').pop() === short);
  return w?.read();
}

function activationOps(fn: string, alpha: number, source: Source, fnName: string): Op[] {
  const known = ACTIVATIONS[fn];
  if (known === 'linear') return [];
  if (known != null) return [{ kind: 'activation', fn: known, alpha, source }];
  const why = /softmax/i.test(fn)
    ? 'softmax inside the model (loadClassifier replaces a final softmax by linear)'
    : `activation '${fn}' (not monotone or not known to the bound rules)`;
  throw unsupported(fnName, `${describe(source)}: ${why}`);
}

function checkChannelsLast(config: Config, source: Source, fn: string) {
  const format = config.dataFormat;
  if (format != null && format !== 'channelsLast') {
    throw unsupported(fn, `${describe(source)}: data format ${String(format)}`);
  }
}

function padding(config: Config, source: Source, fn: string): 'same' | 'valid' {
  const p = config.padding;
  if (p === 'same' || p === 'valid') return p;
  throw unsupported(fn, `${describe(source)}: padding '${String(p)}'`);
}

/** The ops of one (non-container) layer, given the shape of one example entering it. */
function layerOps(layer: tfl.layers.Layer, inShape: number[], fn: string): Op[] {
  const className = layer.getClassName();
  const source = { className, name: layer.name };
  const config = layer.getConfig() as Config;
  if (IDENTITY_LAYERS.has(className)) return [];
  switch (className) {
    case 'Dense': {
      const kernel = weight(layer, 'kernel') as tf.Tensor2D;
      const bias = weight(layer, 'bias') as tf.Tensor1D | undefined;
      const act = activationOps(String(config.activation), 0, source, fn);
      return [{ kind: 'dense', kernel, bias, source }, ...act];
    }
    case 'Conv2D': {
      checkChannelsLast(config, source, fn);
      const kernel = weight(layer, 'kernel') as tf.Tensor4D;
      const bias = weight(layer, 'bias') as tf.Tensor1D | undefined;
      const conv: Op = {
        kind: 'conv2d',
        kernel,
        bias,
        strides: pair(config.strides),
        padding: padding(config, source, fn),
        dilations: pair(config.dilationRate ?? 1),
        source,
      };
      return [conv, ...activationOps(String(config.activation), 0, source, fn)];
    }
    case 'Activation':
      return activationOps(String(config.activation), 0, source, fn);
    case 'ReLU': {
      const max = config.maxValue as number | null | undefined;
      return [
        { kind: 'activation', fn: max == null ? 'relu' : 'cappedRelu', alpha: max ?? 0, source },
      ];
    }
    case 'LeakyReLU': {
      const alpha = Number(config.alpha ?? 0.3);
      if (!(alpha >= 0 && alpha <= 1)) throw unsupported(fn, `${describe(source)}: alpha ${alpha}`);
      return [{ kind: 'activation', fn: 'leakyRelu', alpha, source }];
    }
    case 'ELU':
      return [{ kind: 'activation', fn: 'elu', alpha: 1, source }];
    case 'BatchNormalization':
      return [batchNormOp(layer, config, inShape, source, fn)];
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      checkChannelsLast(config, source, fn);
      const poolSize = pair(config.poolSize);
      const geometry: PoolGeometry = {
        poolSize,
        strides: config.strides == null ? poolSize : pair(config.strides),
        padding: padding(config, source, fn),
      };
      const kind = className === 'MaxPooling2D' ? 'maxPool' : 'avgPool';
      return [{ kind, ...geometry, source }];
    }
    case 'GlobalAveragePooling2D':
      checkChannelsLast(config, source, fn);
      return [{ kind: 'globalAvgPool', source }];
    case 'Flatten':
      checkChannelsLast(config, source, fn);
      return [{ kind: 'reshape', source }];
    case 'Reshape':
      return [{ kind: 'reshape', source }];
    default:
      throw unsupported(fn, `${describe(source)} (no bound rule for ${className})`);
  }
}

/** Inference-mode BatchNormalization as y = x·scale + shift over the last axis. */
function batchNormOp(
  layer: tfl.layers.Layer,
  config: Config,
  inShape: number[],
  source: Source,
  fn: string,
): Op {
  const axis = Number(config.axis ?? -1);
  if (axis !== -1 && axis !== inShape.length) {
    throw unsupported(fn, `${describe(source)}: normalisation over axis ${axis}, not the last`);
  }
  const mean = weight(layer, 'moving_mean')!;
  const variance = weight(layer, 'moving_variance')!;
  const gamma = weight(layer, 'gamma');
  const beta = weight(layer, 'beta');
  let scale = tf.rsqrt(tf.add(variance, Number(config.epsilon ?? 1e-3)));
  if (gamma != null) scale = tf.mul(scale, gamma);
  let shift = tf.neg(tf.mul(mean, scale));
  if (beta != null) shift = tf.add(shift, beta);
  return { kind: 'scale', scale, shift, source };
}

/** The layers from the model's input to its output, flattening nested models. */
function chain(model: tfl.LayersModel, fn: string): tfl.layers.Layer[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw unsupported(fn, `model '${model.name}' has several inputs or outputs`);
  }
  const layers: tfl.layers.Layer[] = [];
  let t = model.outputs[0];
  for (;;) {
    const layer = t.sourceLayer;
    if (layer.getClassName() === 'InputLayer') break;
    const node = layer.inboundNodes[t.nodeIndex];
    if (node == null || node.inputTensors.length !== 1) {
      const what = `${describe({ className: layer.getClassName(), name: layer.name })}`;
      throw unsupported(fn, `${what} takes ${node?.inputTensors.length ?? 0} inputs (branching)`);
    }
    if (layer instanceof tfl.LayersModel) layers.push(...chain(layer, fn).reverse());
    else layers.push(layer);
    t = node.inputTensors[0];
  }
  return layers.reverse();
}

/**
 * The network of `model` as bound ops: input normalisation first (if any), then every layer.
 * Throws 'UNSUPPORTED' for a GraphModel, a branching model or a layer without a bound rule.
 * Creates tensors (normalisation and BatchNormalization constants): call inside `tf.tidy`.
 */
export function buildNetwork(model: TfjsClassifier, fn: string): Network {
  if (model.onnx != null) {
    const net = onnxNetworkOf(model.onnx, fn);
    return withNormalisation(net, model.inputShape, model.mean, model.std);
  }
  if (model.layersModel == null) {
    throw unsupported(fn, `bounds need a tfjs LayersModel or an ONNX model, got a ${model.format}`);
  }
  return networkOf(model.layersModel, model.inputShape, fn, model.mean, model.std);
}

/** `net` after the classifier's input normalisation (x − mean) / std, if it has one. */
function withNormalisation(
  net: Network,
  inputShape: number[],
  mean?: number[],
  std?: number[],
): Network {
  if (mean == null && std == null) return net;
  const s = tf.div(1, tf.tensor1d(std ?? [1]));
  const shift = tf.neg(tf.mul(tf.tensor1d(mean ?? [0]), s));
  const source = { className: 'Classifier', name: 'normalisation' };
  return {
    ops: [{ kind: 'scale', scale: s, shift, source }, ...net.ops],
    shapes: [[...inputShape], ...net.shapes],
  };
}

/** `buildNetwork` for a bare LayersModel, with optional per-channel normalisation. */
export function networkOf(
  layersModel: tfl.LayersModel,
  inputShape: number[],
  fn: string,
  mean?: number[],
  std?: number[],
): Network {
  const ops: Op[] = [];
  const shapes: number[][] = [[...inputShape]];
  let shape = [...inputShape];
  for (const layer of chain(layersModel, fn)) {
    const layerShape = layer.computeOutputShape([null, ...shape]) as (number | null)[];
    const out = layerShape.slice(1) as number[];
    const added = layerOps(layer, shape, fn);
    for (const op of added) {
      ops.push(op);
      shapes.push(op.kind === 'activation' ? shapes[shapes.length - 1] : out);
    }
    shape = out;
  }
  return withNormalisation({ ops, shapes }, inputShape, mean, std);
}
