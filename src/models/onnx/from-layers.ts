/**
 * A tfjs Sequential LayersModel as an ONNX model (opset 13): Conv2D, Dense, pooling, Flatten,
 * BatchNormalization, Activation and Dropout (dropped: inference only). The ONNX graph takes NCHW
 * images, as PyTorch models do; a Transpose before Flatten keeps Keras's channels-last flattening
 * order, so Dense weights carry over unchanged. parry's metadata (bounds, normalisation, class
 * names) goes into `metadata_props` under the key `parry`.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../../errors.js';
import type { TfjsClassifier } from '../tfjs-classifier.js';
import {
  IR_VERSION,
  type OnnxAttribute,
  type OnnxModel,
  type OnnxNode,
  type OnnxTensor,
  OPSET,
} from './graph.js';

const ACTIVATIONS: Record<string, string | null> = {
  linear: null,
  relu: 'Relu',
  sigmoid: 'Sigmoid',
  tanh: 'Tanh',
  elu: 'Elu',
  softplus: 'Softplus',
  softmax: 'Softmax',
};

type LayerConfig = Record<string, unknown>;

/** Builds the ONNX graph layer by layer, tracking the running tensor's name and rank. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers = new Map<string, OnnxTensor>();
  current = 'input';
  /** The running tensor is an NCHW image batch (else a 2-D feature batch). */
  spatial: boolean;

  constructor(inputRank: number) {
    this.spatial = inputRank === 3;
  }

  weight(name: string, t: tf.Tensor, perm?: number[]): string {
    const v = perm ? tf.tidy(() => tf.transpose(t, perm)) : t;
    this.initializers.set(name, {
      name,
      dims: [...v.shape],
      dtype: 'float32',
      data: Float32Array.from(v.dataSync()),
    });
    if (v !== t) v.dispose();
    return name;
  }

  node(
    opType: string,
    name: string,
    inputs: string[],
    attributes: Record<string, OnnxAttribute> = {},
  ) {
    const output = `${name}_out`;
    this.nodes.push({
      opType,
      name,
      domain: '',
      inputs: [this.current, ...inputs],
      outputs: [output],
      attributes,
    });
    this.current = output;
  }

  activation(layer: string, config: LayerConfig): void {
    const name = String(config.activation ?? 'linear');
    if (!(name in ACTIVATIONS)) {
      throw new ParryError('UNSUPPORTED', `export: layer '${layer}' has activation '${name}'`);
    }
    const op = ACTIVATIONS[name];
    if (op !== null) this.node(op, `${layer}_${name}`, [], op === 'Softmax' ? { axis: -1 } : {});
  }
}

const pair = (v: unknown): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1])] : [Number(v), Number(v)];

function windowAttributes(layer: string, config: LayerConfig, kernel: [number, number]) {
  const padding = String(config.padding ?? 'valid');
  if (padding !== 'valid' && padding !== 'same') {
    throw new ParryError('UNSUPPORTED', `export: layer '${layer}' has padding '${padding}'`);
  }
  if ((config.dataFormat ?? 'channelsLast') !== 'channelsLast') {
    throw new ParryError('UNSUPPORTED', `export: layer '${layer}' is channels_first`);
  }
  return {
    kernel_shape: kernel,
    strides: pair(config.strides ?? 1),
    ...(padding === 'same' ? { auto_pad: 'SAME_UPPER' } : { pads: [0, 0, 0, 0] }),
  };
}

function exportLayer(b: GraphBuilder, layer: tfl.layers.Layer): void {
  const name = layer.name;
  const kind = layer.getClassName();
  const config = layer.getConfig() as LayerConfig;
  const w = layer.getWeights();
  switch (kind) {
    case 'InputLayer':
    case 'Dropout':
      return;
    case 'Conv2D': {
      const kernel = pair(config.kernelSize);
      const dilations = pair(config.dilationRate ?? 1);
      const inputs = [b.weight(`${name}_W`, w[0], [3, 2, 0, 1])];
      if (w[1]) inputs.push(b.weight(`${name}_B`, w[1]));
      b.node('Conv', name, inputs, { ...windowAttributes(name, config, kernel), dilations });
      b.activation(name, config);
      return;
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const kernel = pair(config.poolSize);
      const attrs = windowAttributes(
        name,
        { ...config, strides: config.strides ?? kernel },
        kernel,
      );
      if (kind === 'AveragePooling2D' && 'auto_pad' in attrs) {
        throw new ParryError('UNSUPPORTED', `export: average pooling '${name}' with same padding`);
      }
      b.node(kind === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', name, [], attrs);
      return;
    }
    case 'Flatten':
      // Keras flattens channels last: back to NHWC first, so the next Dense reads the same order.
      if (b.spatial) b.node('Transpose', `${name}_nhwc`, [], { perm: [0, 2, 3, 1] });
      b.node('Flatten', name, [], { axis: 1 });
      b.spatial = false;
      return;
    case 'Dense': {
      if (b.spatial)
        throw new ParryError('UNSUPPORTED', `export: Dense '${name}' on an image batch`);
      const inputs = [b.weight(`${name}_W`, w[0])];
      if (w[1]) inputs.push(b.weight(`${name}_B`, w[1]));
      b.node('Gemm', name, inputs);
      b.activation(name, config);
      return;
    }
    case 'Activation':
      b.activation(name, config);
      return;
    case 'BatchNormalization': {
      const [gamma, beta, mean, variance] = w;
      const axis = Number(config.axis ?? -1);
      if (axis !== -1 && axis !== (b.spatial ? 3 : 1)) {
        throw new ParryError(
          'UNSUPPORTED',
          `export: batch normalisation '${name}' over axis ${axis}`,
        );
      }
      b.node(
        'BatchNormalization',
        name,
        [
          b.weight(`${name}_scale`, gamma),
          b.weight(`${name}_bias`, beta),
          b.weight(`${name}_mean`, mean),
          b.weight(`${name}_var`, variance),
        ],
        { epsilon: Number(config.epsilon ?? 1e-3) },
      );
      return;
    }
    default:
      throw new ParryError(
        'UNSUPPORTED',
        `export: parry cannot write layer '${name}' (${kind}) to ONNX`,
      );
  }
}

/**
 * `classifier` (a tfjs LayersModel, as `parry train` writes) as an ONNX model whose logits equal
 * the classifier's. Normalisation stays outside the graph, in the metadata, as in the tfjs model.
 */
export function exportOnnx(classifier: TfjsClassifier): OnnxModel {
  const model = classifier.layersModel;
  if (model === undefined) {
    throw new ParryError(
      'UNSUPPORTED',
      `export: ONNX export needs a LayersModel, got a ${classifier.format}`,
    );
  }
  const shape = classifier.inputShape;
  if (shape.length !== 3 && shape.length !== 1) {
    throw new ParryError('UNSUPPORTED', `export: input shape [${shape.join(', ')}]`);
  }
  const b = new GraphBuilder(shape.length);
  for (const layer of model.layers) exportLayer(b, layer);
  const last = b.nodes[b.nodes.length - 1];
  last.outputs = ['logits'];
  const inputShape = shape.length === 3 ? [null, shape[2], shape[0], shape[1]] : [null, shape[0]];
  const metadata = {
    layout: 'NCHW',
    bounds: classifier.bounds,
    ...(classifier.mean ? { mean: classifier.mean } : {}),
    ...(classifier.std ? { std: classifier.std } : {}),
    ...(classifier.classNames ? { classNames: classifier.classNames } : {}),
  };
  return {
    irVersion: IR_VERSION,
    opsets: [{ domain: '', version: OPSET }],
    producerName: 'parry',
    metadata: { parry: JSON.stringify(metadata) },
    graph: {
      name: model.name,
      nodes: b.nodes,
      initializers: b.initializers,
      inputs: [{ name: 'input', shape: inputShape }],
      outputs: [{ name: 'logits', shape: [null, classifier.numClasses] }],
    },
  };
}
