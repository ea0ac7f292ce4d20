/**
 * Edits of a model's topology before it is built: a final softmax becomes linear, so the model
 * outputs logits. Every function works on a copy and leaves its input unchanged.
 */
import type { OnnxModel } from '../engine/onnx/ir.js';

type Json = Record<string, unknown>;
type LayerJson = { class_name?: string; name?: string; config?: Json };

const NESTED_MODELS = new Set(['Sequential', 'Model', 'Functional']);

/** The layer that produces a Keras model's single output, or null if not determinable. */
function outputLayer(model: LayerJson): LayerJson | null {
  const config = model.config as unknown;
  // Old Sequential configs are the layer list itself.
  const layers = (Array.isArray(config) ? config : (config as Json | undefined)?.layers) as
    | LayerJson[]
    | undefined;
  if (!Array.isArray(layers) || layers.length === 0) return null;
  let last: LayerJson | undefined;
  if (model.class_name === 'Sequential') {
    last = layers[layers.length - 1];
  } else {
    const outputs = (config as Json).output_layers;
    if (!Array.isArray(outputs) || outputs.length !== 1 || !Array.isArray(outputs[0])) return null;
    const name = outputs[0][0];
    last = layers.find((l) => (l.name ?? l.config?.name) === name);
  }
  if (last == null) return null;
  return NESTED_MODELS.has(last.class_name ?? '') ? outputLayer(last) : last;
}

/**
 * Replaces a final softmax in a LayersModel topology (a layer's `activation: 'softmax'`, an
 * `Activation` layer, or a `Softmax` layer) by a linear activation.
 */
export function linearizeLayersSoftmax(topology: unknown): { topology: Json; replaced: boolean } {
  const copy = structuredClone(topology) as Json;
  const root = (copy.model_config ?? copy) as LayerJson;
  const layer = outputLayer(root);
  if (layer == null || layer.config == null) return { topology: copy, replaced: false };
  if (layer.class_name === 'Softmax') {
    const kept = ['name', 'trainable', 'dtype'].filter((k) => layer.config?.[k] != null);
    layer.class_name = 'Activation';
    layer.config = {
      ...Object.fromEntries(kept.map((k) => [k, layer.config?.[k]])),
      activation: 'linear',
    };
    return { topology: copy, replaced: true };
  }
  if (layer.config.activation === 'softmax') {
    layer.config.activation = 'linear';
    return { topology: copy, replaced: true };
  }
  return { topology: copy, replaced: false };
}

type NodeJson = { name: string; op: string; input?: string[]; attr?: Json };

/** `name`, `name:1` and `^name` (control input) all refer to node `name`. */
const nodeName = (input: string) => input.replace(/^\^/, '').split(':')[0];

/**
 * Replaces the Softmax that feeds a GraphModel's single output (possibly through Identity
 * nodes) by an Identity, keeping node names so signatures still resolve.
 */
export function linearizeGraphSoftmax(topology: unknown): { topology: Json; replaced: boolean } {
  const copy = structuredClone(topology) as Json;
  const nodes = copy.node as NodeJson[] | undefined;
  if (!Array.isArray(nodes)) return { topology: copy, replaced: false };
  const consumed = new Set(nodes.flatMap((n) => (n.input ?? []).map(nodeName)));
  const outputs = nodes.filter((n) => !consumed.has(n.name) && n.op !== 'Const');
  if (outputs.length !== 1) return { topology: copy, replaced: false };
  const byName = new Map(nodes.map((n) => [n.name, n]));
  let node: NodeJson | undefined = outputs[0];
  while (node?.op === 'Identity' && node.input?.length) node = byName.get(nodeName(node.input[0]));
  if (node?.op !== 'Softmax') return { topology: copy, replaced: false };
  node.op = 'Identity';
  return { topology: copy, replaced: true };
}

/**
 * Replaces the Softmax that feeds an ONNX graph's first output (possibly through Identity
 * nodes) by an Identity, keeping value names. (A final LogSoftmax stays: log-probabilities are
 * logits shifted per example, with the same argmax, cross-entropy and margins.)
 */
export function linearizeOnnxSoftmax(model: OnnxModel): { model: OnnxModel; replaced: boolean } {
  const output = model.graph.outputs[0]?.name;
  const producer = new Map(model.graph.nodes.flatMap((n) => n.outputs.map((o) => [o, n])));
  let node = output === undefined ? undefined : producer.get(output);
  while (node?.opType === 'Identity') node = producer.get(node.inputs[0]);
  if (node?.opType !== 'Softmax') return { model, replaced: false };
  const softmax = node;
  const nodes = model.graph.nodes.map((n) =>
    n === softmax ? { ...n, opType: 'Identity', attributes: {} } : n,
  );
  return { model: { ...model, graph: { ...model.graph, nodes } }, replaced: true };
}
