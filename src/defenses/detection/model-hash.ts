/**
 * The content hash of a loaded classifier: what a saved detector records about the model it was
 * fitted for, so that it is never applied to another one. sha256 (hex) over what decides the
 * model's outputs: its format, input shape, class count, bounds and normalisation, then the
 * weights in order with their shapes — a LayersModel's layers (class and configuration without
 * names or initialisers) and weights, a GraphModel's weights by name, or an ONNX graph's nodes
 * (operators, wiring, attributes) and initializers by name. Class names do not count (they do not change a score).
 * The hash is of the loaded model, not of its files: the same weights written again (another
 * folder, re-saved JSON) hash the same; float16 weights hash as the float32 values they load as.
 */
import { createHash, type Hash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { TfjsClassifier } from '../../models/tfjs-classifier.js';

/** Layer configuration keys that do not change what a loaded layer computes. */
const IGNORED_CONFIG = /^(name|trainable|dtype)$|(Initializer|Regularizer|Constraint)$/;

function addText(h: Hash, text: string): void {
  h.update(`${text}\0`);
}

function addValues(h: Hash, shape: readonly number[], dtype: string, values: ArrayLike<number>) {
  addText(h, `${dtype}[${shape.join(',')}]`);
  const typed =
    values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array
      ? values
      : Float64Array.from(values);
  h.update(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
}

const addTensor = (h: Hash, t: tf.Tensor) =>
  addValues(h, t.shape, t.dtype, t.dataSync() as ArrayLike<number>);

/** sha256 (hex) of a loaded classifier's content; 'UNSUPPORTED' for anything but a TfjsClassifier. */
export function classifierHash(model: Classifier): string {
  if (!(model instanceof TfjsClassifier)) {
    throw new ParryError(
      'UNSUPPORTED',
      `classifierHash: only a loaded model (TfjsClassifier) has a content hash, got ${model.constructor?.name ?? typeof model}`,
    );
  }
  const h = createHash('sha256');
  addText(
    h,
    JSON.stringify({
      format: model.format,
      inputShape: model.inputShape,
      numClasses: model.numClasses,
      bounds: model.bounds,
      mean: model.mean ?? null,
      std: model.std ?? null,
    }),
  );
  if (model.layersModel) {
    for (const layer of model.layersModel.layers) {
      const config = Object.entries(layer.getConfig()).filter(([k]) => !IGNORED_CONFIG.test(k));
      addText(h, `${layer.getClassName()} ${JSON.stringify(config)}`);
      for (const w of layer.getWeights()) addTensor(h, w);
    }
  } else if (model.graphModel) {
    const weights = model.graphModel.weights;
    for (const name of Object.keys(weights).sort()) {
      addText(h, name);
      for (const t of weights[name]) addTensor(h, t);
    }
  } else if (model.onnx) {
    const graph = model.onnx.model.graph;
    const typed = (_: string, v: unknown) =>
      ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v;
    for (const n of graph.nodes) {
      addText(h, JSON.stringify([n.opType, n.domain, n.inputs, n.outputs, n.attributes], typed));
    }
    for (const name of [...graph.initializers.keys()].sort()) {
      const t = graph.initializers.get(name)!;
      addText(h, name);
      addValues(h, t.dims, t.dtype, t.data);
    }
  }
  return h.digest('hex');
}
