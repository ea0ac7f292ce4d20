/**
 * An ONNX model's graph as a tfjs network: the initializers become tensors once, and `execute`
 * runs the nodes in order with the operators of ops.ts, so `tf.grad` differentiates through it
 * on any backend. Inputs arrive in parry's layout (NHWC images) and are transposed to the
 * model's (NCHW unless its metadata says NHWC, as PyTorch exports are NCHW).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../errors.js';
import { type ParryMetadata, readParryMetadata } from '../metadata.js';
import type { OnnxGraph, OnnxModel, OnnxTensor } from './graph.js';
import { OPS } from './ops.js';

export type Layout = 'NCHW' | 'NHWC';

/** parry's entry in `metadata_props`: the classifier's metadata plus the input layout. */
export interface OnnxParryMetadata extends ParryMetadata {
  layout?: Layout;
}

/** Reads the `parry` key of an ONNX model's `metadata_props` (absent: `{}`). */
export function readOnnxMetadata(model: OnnxModel, source: string): OnnxParryMetadata {
  const raw = model.metadata.parry;
  if (raw === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ParryError('BAD_FILE', `${source}: metadata 'parry' is not JSON`);
  }
  const meta: OnnxParryMetadata = readParryMetadata({ parry: parsed }, source);
  const layout = (parsed as { layout?: unknown }).layout;
  if (layout !== undefined) {
    if (layout !== 'NCHW' && layout !== 'NHWC') {
      throw new ParryError('BAD_FILE', `${source}: metadata layout ${JSON.stringify(layout)}`);
    }
    meta.layout = layout;
  }
  return meta;
}

const tensorOf = (t: OnnxTensor) => tf.tensor(t.data, t.dims, t.dtype);

export class OnnxNetwork {
  /** One example's shape in parry's layout (channels last for images). */
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly layout: Layout;
  /** Weights: the float initializers' sizes, summed. */
  readonly params: number;
  private readonly weights = new Map<string, tf.Tensor>();
  private readonly inputName: string;
  private readonly outputName: string;

  constructor(
    readonly model: OnnxModel,
    source: string,
    opts: { inputShape?: number[]; layout?: Layout } = {},
  ) {
    const g = model.graph;
    if (g.inputs.length !== 1 || g.outputs.length < 1) {
      throw new ParryError(
        'UNSUPPORTED',
        `${source}: a classifier has one input and one output, this graph has ${g.inputs.length} and ${g.outputs.length}`,
      );
    }
    const known = (n: { opType: string; domain: string }) =>
      (n.opType === 'Constant' || n.opType in OPS) && (n.domain === '' || n.domain === 'ai.onnx');
    const unknown = [...new Set(g.nodes.filter((n) => !known(n)).map((n) => n.opType))];
    if (unknown.length > 0) {
      throw new ParryError(
        'UNSUPPORTED',
        `${source}: parry has no rule for ONNX operator${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`,
      );
    }
    this.inputName = g.inputs[0].name;
    this.outputName = g.outputs[0].name;
    const dims = g.inputs[0].shape.slice(1);
    this.layout = opts.layout ?? 'NCHW';
    const stored = dims.length === 3 && this.layout === 'NCHW' ? [dims[1], dims[2], dims[0]] : dims;
    const shape = opts.inputShape ?? stored;
    if (shape.length === 0 || shape.some((d) => d == null)) {
      throw new ParryError(
        'UNSUPPORTED',
        `${source}: the input's shape [${dims.join(', ')}] is not fully known; give inputShape`,
      );
    }
    this.inputShape = shape as number[];
    let params = 0;
    for (const t of g.initializers.values()) {
      this.weights.set(t.name, tf.keep(tensorOf(t)));
      if (t.dtype === 'float32') params += t.data.length;
    }
    this.params = params;
    try {
      const out = tf.tidy(() => this.execute(tf.zeros([1, ...this.inputShape])));
      const outShape = out.shape;
      out.dispose();
      if (outShape.length !== 2) {
        throw new ParryError(
          'UNSUPPORTED',
          `${source} maps one example to shape ${JSON.stringify(outShape)}, not [1, numClasses]`,
        );
      }
      this.numClasses = outShape[1];
    } catch (e) {
      this.dispose();
      if (e instanceof ParryError) throw e;
      throw new ParryError(
        'BAD_FILE',
        `${source}: cannot run the graph: ${String((e as Error).message ?? e).split('\n')[0]}`,
        { cause: e },
      );
    }
  }

  /** The graph's output for `x` (`[batch, ...inputShape]`, parry's layout). */
  execute(x: tf.Tensor): tf.Tensor {
    const values = new Map<string, tf.Tensor>(this.weights);
    values.set(
      this.inputName,
      x.rank === 4 && this.layout === 'NCHW' ? tf.transpose(x, [0, 3, 1, 2]) : x,
    );
    return executeGraph(this.model.graph, values, this.outputName);
  }

  /** The initializer `name` (kept by the network: do not dispose), if there is one. */
  initializer(name: string): tf.Tensor | undefined {
    return this.weights.get(name);
  }

  private shapes?: Map<string, number[]>;

  /** Every value's shape (inputs, initializers and node outputs) for one example. */
  valueShapes(): Map<string, number[]> {
    if (this.shapes === undefined) this.shapes = this.computeShapes();
    return new Map(this.shapes);
  }

  private computeShapes(): Map<string, number[]> {
    const shapes = new Map<string, number[]>();
    for (const [name, t] of this.weights) shapes.set(name, [...t.shape]);
    tf.tidy(() => {
      const x = tf.zeros([1, ...this.inputShape]);
      const values = new Map<string, tf.Tensor>(this.weights);
      const input = x.rank === 4 && this.layout === 'NCHW' ? tf.transpose(x, [0, 3, 1, 2]) : x;
      values.set(this.inputName, input);
      shapes.set(this.inputName, [...input.shape]);
      executeGraph(this.model.graph, values, this.outputName, shapes);
    });
    return shapes;
  }

  /** The nodes, as `info()` lists layers. */
  layers() {
    const g = this.model.graph;
    return g.nodes
      .filter((n) => n.opType !== 'Constant')
      .map((n) => ({
        name: n.name || n.outputs[0],
        className: n.opType,
        outputShape: null,
        params: n.inputs.reduce((a, i) => a + (g.initializers.get(i)?.data.length ?? 0), 0),
      }));
  }

  dispose(): void {
    tf.dispose([...this.weights.values()]);
    this.weights.clear();
  }
}

/**
 * Runs `graph`'s nodes in order from `values` (its inputs and initializers by name, added to as
 * nodes compute) and returns the value named `output`; `shapes`, when given, receives every
 * value's shape. Call inside `tf.tidy`: intermediates are left to it.
 */
export function executeGraph(
  graph: OnnxGraph,
  values: Map<string, tf.Tensor>,
  output: string,
  shapes?: Map<string, number[]>,
): tf.Tensor {
  for (const node of graph.nodes) {
    if (node.opType === 'Constant') {
      const value = node.attributes.value as OnnxTensor | undefined;
      if (value === undefined) {
        throw new ParryError('UNSUPPORTED', `Constant node '${node.name}' without a tensor value`);
      }
      values.set(node.outputs[0], tensorOf(value));
      shapes?.set(node.outputs[0], [...value.dims]);
      continue;
    }
    const inputs = node.inputs.map((name) => (name === '' ? undefined : values.get(name)));
    const outputs = OPS[node.opType]({ node, inputs });
    outputs.forEach((t, i) => {
      if (node.outputs[i]) values.set(node.outputs[i], t);
    });
    if (shapes)
      for (const name of node.outputs)
        if (values.has(name)) shapes.set(name, [...values.get(name)!.shape]);
  }
  const out = values.get(output);
  if (out === undefined) {
    throw new ParryError('BAD_FILE', `the graph never computes its output '${output}'`);
  }
  return out;
}
