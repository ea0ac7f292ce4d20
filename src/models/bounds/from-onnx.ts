/**
 * An ONNX classifier's graph as bound ops (layers.ts), so IBP and CROWN run on ONNX models,
 * PyTorch exports included.
 *
 * Layout. Bound ops work on parry's layout: an image value is channels last. Every rank-4 ONNX
 * value (NCHW) is therefore held as its transpose [N, H, W, C]; every other value as ONNX has
 * it. Convolutions, pooling and per-channel constants are translated to that layout (kernels
 * OIHW → HWIO, a [C, 1, 1] constant → [1, 1, C]); operators that see ONNX's element order
 * (Flatten, Reshape, Transpose) first transpose back to it; the op chain (op-chain.ts) fuses
 * adjacent transposes, so a channels-last export's Transpose before its Flatten costs nothing.
 *
 * Graph shape: the path from input to output (onnx-walk.ts); a join of two branches becomes a
 * `residual` op. An operator without a rule, or one used in a way the bound ops cannot express,
 * throws 'UNSUPPORTED' naming the operator and the node.
 *
 * Weights are the network's own tensors (initializers), plus tensors derived from them: call
 * inside `tf.tidy`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { windowPads } from '../../engine/onnx/pads.js';
import type { OnnxNode, OnnxTensor } from '../onnx/graph.js';
import type { OnnxNetwork } from '../onnx/network.js';
import { nodeSource, OnnxPaths, refuseNode, type Step } from './onnx-walk.js';
import { OpChain, same } from './op-chain.js';
import {
  type ActivationFn,
  type ExplicitPadding,
  type Network,
  type PoolGeometry,
  type Source,
  sizeOf,
  unsupported,
} from './ops.js';

/** Held = transpose(ONNX value, TO_HELD) for rank-4 values; per example (batch axis dropped). */
const TO_HELD = [1, 2, 0];
/** ONNX value = transpose(held, TO_ONNX), per example. */
const TO_ONNX = [2, 0, 1];

const ACTIVATIONS: Record<string, ActivationFn> = {
  Relu: 'relu',
  Sigmoid: 'sigmoid',
  Tanh: 'tanh',
  Softplus: 'softplus',
  Softsign: 'softsign',
};
const IDENTITIES = new Set(['Identity', 'Dropout']);
const RESHAPES = new Set(['Flatten', 'Reshape', 'Squeeze', 'Unsqueeze']);
const ARITHMETIC = new Set(['Add', 'Sub', 'Mul', 'Div']);

/**
 * The bound ops of `net`'s graph, for inputs in parry's layout (`net.inputShape`). Throws
 * 'UNSUPPORTED' naming the first node without a bound rule, prefixed by `fn`.
 */
export function onnxNetworkOf(net: OnnxNetwork, fn: string): Network {
  return new Converter(net, fn).network();
}

class Converter {
  private readonly graph;
  private readonly shapes: Map<string, number[]>;
  private readonly paths: OnnxPaths;
  private readonly input: string;

  constructor(
    private readonly net: OnnxNetwork,
    private readonly fn: string,
  ) {
    this.graph = net.model.graph;
    this.shapes = net.valueShapes();
    this.input = this.graph.inputs[0].name;
    this.paths = new OnnxPaths(this.graph, fn);
  }

  network(): Network {
    const output = this.graph.outputs[0].name;
    const chain = new OpChain([...this.net.inputShape]);
    // An NHWC-layout model reads parry's layout as is: hold its rank-4 input like any other.
    if (this.net.layout === 'NHWC' && this.onnxShape(this.input).length === 4) {
      chain.transpose(TO_HELD, { className: 'Classifier', name: 'layout' });
    }
    this.convert(chain, this.paths.segment(this.input, output));
    return chain.network();
  }

  // ---- conversion ---------------------------------------------------------------------------

  private convert(chain: OpChain, steps: Step[]): void {
    for (const step of steps) {
      if (step.joins !== undefined) this.join(chain, step.node, step.input, step.joins);
      else this.node(chain, step.node, step.input);
    }
  }

  private join(chain: OpChain, node: OnnxNode, from: string, joins: [string, string]): void {
    const y = node.outputs[0];
    for (const v of joins) {
      if (!same(this.onnxShape(v), this.onnxShape(y))) {
        throw this.refuse(node, 'broadcasts one branch against the other');
      }
    }
    const branches = joins.map((v, i) => {
      const branch = new OpChain([...chain.shape]);
      this.convert(branch, this.paths.segment(from, v));
      // Sub: the second branch enters negated.
      if (i === 1 && node.opType === 'Sub') {
        const source = this.source(node);
        branch.push(
          { kind: 'scale', scale: tf.scalar(-1), shift: tf.scalar(0), source },
          branch.shape,
        );
      }
      return branch.network();
    });
    chain.push({ kind: 'residual', branches, source: this.source(node) }, this.held(y));
  }

  private node(chain: OpChain, node: OnnxNode, x: string): void {
    const op = node.opType;
    if (node.domain !== '' && node.domain !== 'ai.onnx') {
      throw this.refuse(node, `domain '${node.domain}' has no bound rules`);
    }
    if (IDENTITIES.has(op)) return;
    const fn = this.activation(node);
    if (fn !== undefined) {
      const alpha = fn === 'leakyRelu' ? this.number(node, 'alpha', 0.01) : 0;
      chain.push({ kind: 'activation', fn, alpha, source: this.source(node) }, chain.shape);
    } else if (op === 'Clip') this.clip(chain, node);
    else if (op === 'Conv') this.conv(chain, node, x);
    else if (op === 'Gemm') this.gemm(chain, node, x);
    else if (op === 'MatMul') this.matMul(chain, node, x);
    else if (op === 'BatchNormalization') this.batchNorm(chain, node, x);
    else if (op === 'MaxPool' || op === 'AveragePool') this.pool(chain, node, x);
    else if (op === 'GlobalAveragePool') {
      this.rank4(node, x);
      chain.push({ kind: 'globalAvgPool', source: this.source(node) }, [chain.shape[2]]);
      chain.reshape(this.held(node.outputs[0]), this.source(node));
    } else if (op === 'Transpose' || RESHAPES.has(op)) this.rearrange(chain, node, x);
    else if (ARITHMETIC.has(op)) this.arithmetic(chain, node, x);
    else if (op === 'Softmax' || op === 'LogSoftmax') {
      throw this.refuse(
        node,
        'a softmax (bounds are on logits: export the model without its final softmax)',
      );
    } else throw this.refuse(node, `no bound rule for ONNX operator ${op}`);
  }

  /** The monotone activation a node computes, if it is one (its parameters checked). */
  private activation(node: OnnxNode): ActivationFn | undefined {
    const op = node.opType;
    if (op in ACTIVATIONS) return ACTIVATIONS[op];
    const is = (name: string, fallback: number, want: number) =>
      Math.abs(this.number(node, name, fallback) - want) <= 1e-6;
    switch (op) {
      case 'LeakyRelu':
        return 'leakyRelu';
      case 'Elu':
        if (!is('alpha', 1, 1)) throw this.refuse(node, 'alpha other than 1');
        return 'elu';
      case 'Selu':
        if (!is('alpha', 1.6732632, 1.6732632) || !is('gamma', 1.050701, 1.050701)) {
          throw this.refuse(node, 'alpha and gamma other than the defaults');
        }
        return 'selu';
      case 'HardSigmoid':
        if (!is('alpha', 0.2, 0.2) || !is('beta', 0.5, 0.5)) {
          throw this.refuse(node, 'alpha and beta other than 0.2 and 0.5');
        }
        return 'hardSigmoid';
      default:
        return undefined;
    }
  }

  /** Transpose, Flatten, Reshape, Squeeze, Unsqueeze: in ONNX's element order. */
  private rearrange(chain: OpChain, node: OnnxNode, x: string): void {
    const y = node.outputs[0];
    const source = this.source(node);
    const inShape = this.onnxShape(x);
    const out = this.onnxShape(y);
    this.toOnnxLayout(chain, x, source);
    if (node.opType === 'Transpose') {
      const perm = (node.attributes.perm as number[] | undefined) ?? [...inShape.keys()].reverse();
      if (perm[0] !== 0) throw this.refuse(node, 'moves the batch axis');
      chain.transpose(
        perm.slice(1).map((j) => j - 1),
        source,
      );
    } else {
      if (out[0] !== 1 || sizeOf(out) !== sizeOf(inShape)) {
        throw this.refuse(node, 'mixes the batch axis with the others');
      }
      chain.reshape(out.slice(1), source);
    }
    this.toHeldLayout(chain, y, source);
  }

  private matMul(chain: OpChain, node: OnnxNode, x: string): void {
    if (node.inputs[0] !== x) throw this.refuse(node, 'multiplies a constant by the input');
    const kernel = this.constant(node, 1);
    if (kernel.rank !== 2) throw this.refuse(node, `a rank-${kernel.rank} constant`);
    chain.push(
      { kind: 'dense', kernel: kernel as tf.Tensor2D, source: this.source(node) },
      this.held(node.outputs[0]),
    );
  }

  /** Transposes a rank-4 value from held layout to ONNX's element order. */
  private toOnnxLayout(chain: OpChain, v: string, source: Source): void {
    if (this.onnxShape(v).length === 4) chain.transpose(TO_ONNX, source);
  }

  private toHeldLayout(chain: OpChain, v: string, source: Source): void {
    if (this.onnxShape(v).length === 4) chain.transpose(TO_HELD, source);
  }

  private clip(chain: OpChain, node: OnnxNode): void {
    const bound = (i: number, name: string, fallback: number) => {
      const attribute = node.attributes[name];
      if (attribute !== undefined) return Number(attribute);
      if (!node.inputs[i]) return fallback;
      return this.constant(node, i).dataSync()[0];
    };
    const lo = bound(1, 'min', Number.NEGATIVE_INFINITY);
    const hi = bound(2, 'max', Number.POSITIVE_INFINITY);
    if (lo !== 0) throw this.refuse(node, `clips at ${lo} below (0 has a rule)`);
    const source = this.source(node);
    const fn: ActivationFn =
      hi === Number.POSITIVE_INFINITY ? 'relu' : hi === 6 ? 'relu6' : 'cappedRelu';
    chain.push(
      { kind: 'activation', fn, alpha: fn === 'cappedRelu' ? hi : 0, source },
      chain.shape,
    );
  }

  private conv(chain: OpChain, node: OnnxNode, x: string): void {
    this.rank4(node, x);
    if (node.inputs[0] !== x) throw this.refuse(node, 'its kernel depends on the input');
    const w = this.constant(node, 1) as tf.Tensor4D; // [O, I / group, kH, kW]
    const bias = node.inputs[2] ? (this.constant(node, 2) as tf.Tensor1D) : undefined;
    const group = this.number(node, 'group', 1);
    const [, perGroup, kh, kw] = w.shape;
    // A grouped convolution as one with a block-diagonal kernel (zeros between the groups).
    const full =
      group === 1
        ? w
        : tf.concat(
            tf.split(w, group, 0).map((wg, g) =>
              tf.pad(wg, [
                [0, 0],
                [g * perGroup, (group - 1 - g) * perGroup],
                [0, 0],
                [0, 0],
              ]),
            ),
            0,
          );
    const kernel = tf.transpose(full, [2, 3, 1, 0]) as tf.Tensor4D;
    const strides = this.pair(node, 'strides');
    const dilations = this.pair(node, 'dilations');
    const [h, wd] = chain.shape;
    const pads = windowPads(node, [h, wd], [kh, kw], strides);
    const sameUpper = windowPads(
      { ...node, attributes: { ...node.attributes, auto_pad: 'SAME_UPPER' } },
      [h, wd],
      [kh, kw],
      strides,
    );
    const [t, l, b, r] = pads;
    const padding: 'same' | 'valid' | ExplicitPadding =
      t + l + b + r === 0
        ? 'valid'
        : same(pads, sameUpper)
          ? 'same'
          : [
              [0, 0],
              [t, b],
              [l, r],
              [0, 0],
            ];
    chain.push(
      { kind: 'conv2d', kernel, bias, strides, padding, dilations, source: this.source(node) },
      this.held(node.outputs[0]),
    );
  }

  private gemm(chain: OpChain, node: OnnxNode, x: string): void {
    if (node.inputs[0] !== x || this.number(node, 'transA', 0) !== 0) {
      throw this.refuse(node, 'the input is not its first, untransposed operand');
    }
    let kernel = this.constant(node, 1);
    if (this.number(node, 'transB', 0) === 1) kernel = tf.transpose(kernel);
    const alpha = this.number(node, 'alpha', 1);
    if (alpha !== 1) kernel = tf.mul(kernel, alpha);
    const out = kernel.shape[1];
    let bias: tf.Tensor1D | undefined;
    if (node.inputs[2]) {
      const c = this.constant(node, 2);
      if (c.size !== out) throw this.refuse(node, `a bias of shape [${c.shape}], not [${out}]`);
      bias = tf.mul(tf.reshape(c, [out]), this.number(node, 'beta', 1)) as tf.Tensor1D;
    }
    chain.push(
      { kind: 'dense', kernel: kernel as tf.Tensor2D, bias, source: this.source(node) },
      this.held(node.outputs[0]),
    );
  }

  private batchNorm(chain: OpChain, node: OnnxNode, x: string): void {
    const rank = this.onnxShape(x).length;
    if (rank !== 4 && rank !== 2)
      throw this.refuse(node, `a rank-${rank} input (2 or 4 have rules)`);
    if (this.number(node, 'training_mode', 0) !== 0) throw this.refuse(node, 'training mode');
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((i) => this.constant(node, i));
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(variance, this.number(node, 'epsilon', 1e-5))));
    const shift = tf.sub(beta, tf.mul(mean, scale));
    chain.push({ kind: 'scale', scale, shift, source: this.source(node) }, chain.shape);
  }

  private pool(chain: OpChain, node: OnnxNode, x: string): void {
    this.rank4(node, x);
    const poolSize = this.pair(node, 'kernel_shape');
    const strides = this.pair(node, 'strides');
    if (this.pair(node, 'dilations').some((d) => d !== 1)) throw this.refuse(node, 'dilations');
    const [h, w] = chain.shape;
    const pads = windowPads(node, [h, w], poolSize, strides);
    const sameUpper = windowPads(
      { ...node, attributes: { ...node.attributes, auto_pad: 'SAME_UPPER' } },
      [h, w],
      poolSize,
      strides,
    );
    const padded = pads.some((p) => p !== 0);
    const isMax = node.opType === 'MaxPool';
    if (
      padded &&
      !(same(pads, sameUpper) && (isMax || this.number(node, 'count_include_pad', 0) === 0))
    ) {
      throw this.refuse(
        node,
        `pads [${pads}] (none, or 'same' without counting padding, have rules)`,
      );
    }
    const out = this.held(node.outputs[0]);
    const floorOut = (n: number, k: number, s: number, p: number) =>
      Math.floor((n + p - k) / s) + 1;
    if (
      !padded &&
      (out[0] !== floorOut(h, poolSize[0], strides[0], 0) ||
        out[1] !== floorOut(w, poolSize[1], strides[1], 0))
    ) {
      throw this.refuse(node, 'ceil_mode adds a partial window');
    }
    const geometry: PoolGeometry = { poolSize, strides, padding: padded ? 'same' : 'valid' };
    chain.push(
      { kind: isMax ? 'maxPool' : 'avgPool', ...geometry, source: this.source(node) },
      out,
    );
  }

  /** x + c, x − c, c − x, x·c, x / c as a `scale` op, with c in held layout. */
  private arithmetic(chain: OpChain, node: OnnxNode, x: string): void {
    const y = node.outputs[0];
    if (!same(this.onnxShape(x), this.onnxShape(y))) {
      throw this.refuse(node, 'broadcasts the input to a larger shape');
    }
    const first = node.inputs[0] === x;
    const c = this.heldConstant(node, first ? 1 : 0, y);
    const zero = tf.scalar(0);
    const one = tf.scalar(1);
    let scale: tf.Tensor = one;
    let shift: tf.Tensor = zero;
    switch (node.opType) {
      case 'Add':
        shift = c;
        break;
      case 'Sub':
        if (first) shift = tf.neg(c);
        else [scale, shift] = [tf.scalar(-1), c];
        break;
      case 'Mul':
        scale = c;
        break;
      default:
        if (!first) throw this.refuse(node, 'divides by the input');
        scale = tf.reciprocal(c);
    }
    chain.push({ kind: 'scale', scale, shift, source: this.source(node) }, chain.shape);
  }

  /** Input `i` of `node` (a constant) broadcast-ready against held values shaped like `y`. */
  private heldConstant(node: OnnxNode, i: number, y: string): tf.Tensor {
    const c = this.constant(node, i);
    const rank = this.onnxShape(y).length;
    if (c.rank > rank) throw this.refuse(node, 'a constant of higher rank than the input');
    let full = tf.reshape(c, [...Array(rank - c.rank).fill(1), ...c.shape]);
    if (rank === 4) full = tf.transpose(full, [0, 2, 3, 1]);
    if (full.shape[0] !== 1) throw this.refuse(node, 'a constant along the batch axis');
    return tf.reshape(full, full.shape.slice(1));
  }

  // ---- reading the graph --------------------------------------------------------------------

  /** The ONNX shape of value `v` for one example (batch axis first, of size 1). */
  private onnxShape(v: string): number[] {
    const s = this.shapes.get(v);
    if (s === undefined) throw unsupported(this.fn, `ONNX value '${v}' has no known shape`);
    return s;
  }

  /** The held shape of `v` for one example: rank-4 values channels last. */
  private held(v: string): number[] {
    const s = this.onnxShape(v).slice(1);
    return s.length === 3 ? TO_HELD.map((j) => s[j]) : s;
  }

  private rank4(node: OnnxNode, x: string): void {
    const rank = this.onnxShape(x).length;
    if (rank !== 4) throw this.refuse(node, `a rank-${rank} input (2-D images only)`);
  }

  /** Input `i` of `node` as a tensor: an initializer or a Constant node's value. */
  private constant(node: OnnxNode, i: number): tf.Tensor {
    const name = node.inputs[i];
    const weight = name ? this.net.initializer(name) : undefined;
    if (weight !== undefined) return weight;
    const from = name ? this.paths.producer.get(name) : undefined;
    const value = from?.opType === 'Constant' ? (from.attributes.value as OnnxTensor) : undefined;
    if (value === undefined) {
      throw this.refuse(node, `input ${i} ('${name}') is computed, not a constant`);
    }
    return tf.tensor(value.data, value.dims, value.dtype);
  }

  private number(node: OnnxNode, name: string, fallback: number): number {
    const v = node.attributes[name];
    return v === undefined ? fallback : Number(v);
  }

  private pair(node: OnnxNode, name: string): [number, number] {
    const v = (node.attributes[name] as number[] | undefined) ?? [1, 1];
    if (v.length !== 2) throw this.refuse(node, `${name} [${v}] (2-D only)`);
    return [v[0], v[1]];
  }

  private source(node: OnnxNode): Source {
    return nodeSource(node);
  }

  private refuse(node: OnnxNode, why: string) {
    return refuseNode(this.fn, node, why);
  }
}
