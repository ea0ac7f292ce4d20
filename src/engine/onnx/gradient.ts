/**
 * Reverse-mode differentiation of an ONNX inference graph, in ONNX: `vjpGraph` returns a graph
 * that computes the original output (the logits) and, from an extra input `d_logits` (dL/dlogits,
 * the same shape), the gradient of L with respect to the graph's input — a vector-Jacobian product
 * that ONNX Runtime runs with its native kernels. The caller computes `d_logits` for its loss
 * (cross-entropy, margins, DLR, ...) from the logits, so one graph serves every loss.
 *
 * Rules cover the operators of image classifiers (listed in `GRADIENT_RULES`); any other operator
 * on the path from the input to the output is refused by name. Shapes (batch 1) of every value come
 * from the caller (`shapes`): they fix the output padding of transposed convolutions and the
 * sizes of split gradients. Max pooling routes each gradient to the one position the forward pass
 * chose (its indices output), so ties behave as in the forward pass.
 */
import { ParryError } from '../../errors.js';
import type { OnnxAttribute, OnnxGraph, OnnxModel, OnnxNode, OnnxTensor } from './ir.js';
import { windowPads } from './pads.js';

/** The opset gradient graphs use (ScatterElements with reduction 'add' needs 16). */
export const GRADIENT_OPSET = 17;

interface Builder {
  nodes: OnnxNode[];
  /** The graph's constants (weights, and the ones rules add). */
  initializers: Map<string, OnnxTensor>;
  fresh(prefix: string): string;
  emit(
    opType: string,
    inputs: string[],
    attributes?: Record<string, OnnxAttribute>,
    outputs?: number,
  ): string[];
  constant(name: string, dims: number[], values: number[], dtype?: 'float32' | 'int32'): string;
  shape(value: string): number[];
}

/** A rule: the gradients of a node's inputs (by position; undefined: none) from its output's. */
type Rule = (b: Builder, node: OnnxNode, dy: string, needs: boolean[]) => (string | undefined)[];

const attr = <T extends OnnxAttribute>(n: OnnxNode, name: string, fallback: T): T =>
  (n.attributes[name] as T | undefined) ?? fallback;

const unsupported = (node: OnnxNode, why: string) =>
  new ParryError('UNSUPPORTED', `gradient of ${node.opType} node '${node.name}': ${why}`);

/** dx of a 2-D window op through ConvTranspose with weights `w` (as the forward conv's). */
function transposedConv(
  b: Builder,
  n: OnnxNode,
  dy: string,
  w: string,
  kernel: number[],
  group: number,
): string {
  const strides = attr(n, 'strides', [1, 1]);
  const dilations = attr(n, 'dilations', [1, 1]);
  const pads = windowPads(n, b.shape(n.inputs[0]).slice(2), kernel, strides);
  const inShape = b.shape(n.inputs[0]);
  const outShape = b.shape(n.outputs[0]);
  // The rows and columns the forward pass never read (stride leftovers) get output padding.
  const outputPadding = [0, 1].map(
    (d) =>
      inShape[2 + d] -
      ((outShape[2 + d] - 1) * strides[d] -
        pads[d] -
        pads[d + 2] +
        (kernel[d] - 1) * dilations[d] +
        1),
  );
  const [dx] = b.emit('ConvTranspose', [dy, w], {
    strides,
    pads,
    dilations,
    group,
    kernel_shape: kernel,
    output_padding: outputPadding,
  });
  return dx;
}

const passThrough: Rule = (_b, node, dy, needs) =>
  node.inputs.map((_, i) => (i === 0 && needs[0] ? dy : undefined));

/** The gradient of the input of a shape-only op: dy reshaped back to x's shape. */
const reshapeBack: Rule = (b, node, dy, needs) => {
  if (!needs[0]) return [];
  const [shape] = b.emit('Shape', [node.inputs[0]]);
  return [b.emit('Reshape', [dy, shape])[0]];
};

/** dy · f'(x) for an elementwise activation, f' from the node's input x and output y. */
const elementwise =
  (derivative: (b: Builder, x: string, y: string, n: OnnxNode) => string): Rule =>
  (b, node, dy, needs) =>
    needs[0] ? [b.emit('Mul', [dy, derivative(b, node.inputs[0], node.outputs[0], node)])[0]] : [];

/**
 * dy for operand `i` of a broadcasting binary op: summed over the axes the operand was broadcast
 * along (at batch 1; the batch axis is the output's own), then reshaped to the operand's shape.
 */
function unbroadcast(b: Builder, node: OnnxNode, i: number, dy: string): string {
  const a = b.shape(node.inputs[i]);
  const y = b.shape(node.outputs[0]);
  const offset = y.length - a.length;
  const axes: number[] = [];
  for (let k = 0; k < y.length; k++) {
    const dim = k < offset ? 1 : a[k - offset];
    if (dim === 1 && y[k] !== 1) axes.push(k);
  }
  if (axes.length === 0 && offset === 0) return dy;
  let summed = dy;
  if (axes.length > 0) {
    const axesName = b.constant(b.fresh('axes'), [axes.length], axes, 'int32');
    [summed] = b.emit('ReduceSum', [dy, axesName], { keepdims: 1 });
  }
  const [shape] = b.emit('Shape', [node.inputs[i]]);
  return b.emit('Reshape', [summed, shape])[0];
}

/** A binary op's rule from the gradient of operand i before unbroadcasting. */
const binaryRule =
  (partial: (b: Builder, node: OnnxNode, dy: string, i: number) => string): Rule =>
  (b, node, dy, needs) =>
    node.inputs.map((_, i) =>
      needs[i] ? unbroadcast(b, node, i, partial(b, node, dy, i)) : undefined,
    );

/** A constant input's values (an initializer or a Constant node), or undefined when the input is absent. */
function constantInput(b: Builder, node: OnnxNode, i: number, what: string): number[] | undefined {
  const name = node.inputs[i];
  if (name === undefined || name === '') return undefined;
  const t =
    b.initializers.get(name) ??
    (b.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name)?.attributes.value as
      | OnnxTensor
      | undefined);
  if (t === undefined) throw unsupported(node, `${what} computed in the graph (not a constant)`);
  return Array.from(t.data as ArrayLike<number>);
}

export const GRADIENT_RULES: Record<string, Rule> = {
  Identity: passThrough,
  Dropout: passThrough,
  Relu: elementwise((b, x) => {
    const zero = b.constant('zero', [], [0]);
    const [positive] = b.emit('Greater', [x, zero]);
    return b.emit('Cast', [positive], { to: 1 })[0];
  }),
  LeakyRelu: elementwise((b, x, _y, n) => {
    const zero = b.constant('zero', [], [0]);
    const one = b.constant('one', [], [1]);
    const alpha = b.constant(b.fresh('alpha'), [], [attr(n, 'alpha', 0.01)]);
    const [positive] = b.emit('Greater', [x, zero]);
    return b.emit('Where', [positive, one, alpha])[0];
  }),
  Sigmoid: elementwise((b, _x, y) => {
    const one = b.constant('one', [], [1]);
    const [rest] = b.emit('Sub', [one, y]);
    return b.emit('Mul', [y, rest])[0];
  }),
  Tanh: elementwise((b, _x, y) => {
    const one = b.constant('one', [], [1]);
    const [square] = b.emit('Mul', [y, y]);
    return b.emit('Sub', [one, square])[0];
  }),
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: (b, node, dy, needs) => {
    if (!needs[0]) return [];
    const perm = attr(node, 'perm', [] as number[]);
    const rank = b.shape(node.inputs[0]).length;
    const forward = perm.length > 0 ? perm : Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    forward.forEach((p, i) => {
      inverse[p] = i;
    });
    return [b.emit('Transpose', [dy], { perm: inverse })[0]];
  },
  Elu: elementwise((b, x, y, n) => {
    // y' = 1 for x > 0, else α·eˣ = y + α.
    const zero = b.constant('zero', [], [0]);
    const one = b.constant('one', [], [1]);
    const alpha = b.constant(b.fresh('alpha'), [], [attr(n, 'alpha', 1)]);
    const [positive] = b.emit('Greater', [x, zero]);
    const [negative] = b.emit('Add', [y, alpha]);
    return b.emit('Where', [positive, one, negative])[0];
  }),
  Softplus: elementwise((b, x) => b.emit('Sigmoid', [x])[0]),
  Clip: elementwise((b, x, _y, n) => {
    // 1 inside [min, max] (ends included, as PyTorch's clamp and tfjs's clipByValue), else 0.
    const bound = (i: number, name: string, fallback: number) =>
      n.inputs[i] !== undefined && n.inputs[i] !== ''
        ? n.inputs[i]
        : b.constant(b.fresh(name), [], [attr(n, name, fallback)]);
    const [aboveMin] = b.emit('GreaterOrEqual', [x, bound(1, 'min', -3.4e38)]);
    const [belowMax] = b.emit('LessOrEqual', [x, bound(2, 'max', 3.4e38)]);
    const [inside] = b.emit('And', [aboveMin, belowMax]);
    return b.emit('Cast', [inside], { to: 1 })[0];
  }),
  Softmax: (b, node, dy, needs) => {
    if (!needs[0]) return [];
    const rank = b.shape(node.inputs[0]).length;
    const axis = attr(node, 'axis', -1);
    if ((axis < 0 ? axis + rank : axis) !== rank - 1) {
      throw unsupported(node, 'softmax over an axis other than the last');
    }
    // dx = y ⊙ (dy − Σ_axis dy ⊙ y).
    const y = node.outputs[0];
    const [dyY] = b.emit('Mul', [dy, y]);
    const last = b.constant('last_axis', [1], [-1], 'int32');
    const [sum] = b.emit('ReduceSum', [dyY, last], { keepdims: 1 });
    const [centred] = b.emit('Sub', [dy, sum]);
    return [b.emit('Mul', [y, centred])[0]];
  },
  Add: binaryRule((_b, _node, dy) => dy),
  Sub: binaryRule((b, _node, dy, i) => (i === 0 ? dy : b.emit('Neg', [dy])[0])),
  Mul: binaryRule((b, node, dy, i) => b.emit('Mul', [dy, node.inputs[1 - i]])[0]),
  Div: binaryRule((b, node, dy, i) => {
    // y = a / c: da = dy / c, dc = −dy · y / c.
    const [quotient] = b.emit('Div', [dy, node.inputs[1]]);
    if (i === 0) return quotient;
    const [scaled] = b.emit('Mul', [quotient, node.outputs[0]]);
    return b.emit('Neg', [scaled])[0];
  }),
  Concat: (b, node, dy, needs) => {
    const rank = b.shape(node.outputs[0]).length;
    const raw = attr(node, 'axis', 0);
    const axis = raw < 0 ? raw + rank : raw;
    if (axis === 0) throw unsupported(node, 'concatenation along the batch axis');
    const sizes = node.inputs.map((i) => b.shape(i)[axis]);
    const split = b.constant(b.fresh('split'), [sizes.length], sizes, 'int32');
    const parts = b.emit('Split', [dy, split], { axis }, sizes.length);
    return parts.map((p, i) => (needs[i] ? p : undefined));
  },
  Pad: (b, node, dy, needs) => {
    if (!needs[0]) return [];
    const mode = attr(node, 'mode', 'constant');
    if (mode !== 'constant') throw unsupported(node, `mode '${mode}'`);
    const pads = constantInput(b, node, 1, 'pads') ?? attr(node, 'pads', [] as number[]);
    if (constantInput(b, node, 3, 'axes') !== undefined) throw unsupported(node, 'an axes input');
    const inShape = b.shape(node.inputs[0]);
    const rank = inShape.length;
    if (pads[0] !== 0 || pads[rank] !== 0) throw unsupported(node, 'padding the batch axis');
    if (pads.some((p) => p < 0)) throw unsupported(node, 'negative pads');
    // dx is dy without the padding: a slice of every other axis.
    const axes = Array.from({ length: rank - 1 }, (_, k) => k + 1);
    const starts = axes.map((a) => pads[a]);
    const ends = axes.map((a) => pads[a] + inShape[a]);
    const name = (what: string, v: number[]) => b.constant(b.fresh(what), [v.length], v, 'int32');
    return [
      b.emit('Slice', [dy, name('starts', starts), name('ends', ends), name('axes', axes)])[0],
    ];
  },
  Gemm: (b, node, dy, needs) => {
    if (needs[1] || needs[2]) throw unsupported(node, 'a gradient for B or C');
    if (!needs[0]) return [];
    if (attr(node, 'transA', 0) !== 0) throw unsupported(node, 'transA = 1');
    // Y = alpha · A · op(B) + C, so dA = alpha · dY · op(B)ᵀ.
    const transB = attr(node, 'transB', 0);
    const [da] = b.emit('Gemm', [dy, node.inputs[1]], {
      alpha: attr(node, 'alpha', 1),
      transB: 1 - transB,
    });
    return [da];
  },
  MatMul: (b, node, dy, needs) => {
    if (needs[1]) throw unsupported(node, 'a gradient for the second operand');
    if (!needs[0]) return [];
    if (b.shape(node.inputs[1]).length !== 2) throw unsupported(node, 'a batched second operand');
    const [wt] = b.emit('Transpose', [node.inputs[1]], { perm: [1, 0] });
    return [b.emit('MatMul', [dy, wt])[0]];
  },
  Conv: (b, node, dy, needs) => {
    if (needs[1] || needs[2]) throw unsupported(node, 'a gradient for the weights');
    if (!needs[0]) return [];
    const w = b.shape(node.inputs[1]);
    if (w.length !== 4) throw unsupported(node, `${w.length - 2}-D convolution`);
    return [transposedConv(b, node, dy, node.inputs[1], [w[2], w[3]], attr(node, 'group', 1))];
  },
  AveragePool: (b, node, dy, needs) => {
    if (!needs[0]) return [];
    const kernel = attr(node, 'kernel_shape', [1, 1]);
    if (attr(node, 'ceil_mode', 0) !== 0) throw unsupported(node, 'ceil_mode = 1');
    const pads = attr(node, 'pads', [0, 0, 0, 0]);
    if (attr(node, 'auto_pad', 'NOTSET') !== 'NOTSET' || pads.some((p) => p !== 0)) {
      throw unsupported(node, 'padding');
    }
    // Each output spreads dy / (kH·kW) over its window: a depthwise transposed convolution.
    const channels = b.shape(node.inputs[0])[1];
    const size = kernel[0] * kernel[1];
    const w = b.constant(
      b.fresh('avg_w'),
      [channels, 1, kernel[0], kernel[1]],
      new Array(channels * size).fill(1 / size),
    );
    return [transposedConv(b, node, dy, w, kernel, channels)];
  },
  GlobalAveragePool: (b, node, dy, needs) => {
    if (!needs[0]) return [];
    const [, , h, w] = b.shape(node.inputs[0]);
    const [shape] = b.emit('Shape', [node.inputs[0]]);
    const [spread] = b.emit('Expand', [dy, shape]);
    const scale = b.constant(b.fresh('gap_scale'), [], [1 / (h * w)]);
    return [b.emit('Mul', [spread, scale])[0]];
  },
  BatchNormalization: (b, node, dy, needs) => {
    if (needs.slice(1).some(Boolean)) throw unsupported(node, 'a gradient for its parameters');
    if (!needs[0]) return [];
    // Inference mode: y = scale · (x − mean) / sqrt(var + ε) + bias, so dx = dy · scale / sqrt(var + ε).
    const rank = b.shape(node.inputs[0]).length;
    const eps = b.constant(b.fresh('bn_eps'), [], [attr(node, 'epsilon', 1e-5)]);
    const [shifted] = b.emit('Add', [node.inputs[4], eps]);
    const [std] = b.emit('Sqrt', [shifted]);
    const [factor] = b.emit('Div', [node.inputs[1], std]);
    const channels = b.shape(node.inputs[0])[1];
    const shape = b.constant(
      b.fresh('bn_shape'),
      [rank - 1],
      [channels, ...new Array(rank - 2).fill(1)],
      'int32',
    );
    const [perChannel] = b.emit('Reshape', [factor, shape]);
    return [b.emit('Mul', [dy, perChannel])[0]];
  },
};

/**
 * A loss whose gradient in the logits the graph computes itself, so one run gives the logits and
 * the input gradient: 'ce' is cross-entropy minus `marginWeight` × the logit margin (parry's
 * attack objective), 'margin' the negated margin. Inputs `goal_onehot` (the goal class, one-hot) and
 * `goal_sign` ([1]: +1 to ascend, −1 to descend, i.e. targeted).
 */
export interface LossHead {
  kind: 'ce' | 'margin';
  marginWeight: number;
}

export const HEAD_ONEHOT = 'goal_onehot';
export const HEAD_SIGN = 'goal_sign';

/** The nodes computing dL/dlogits of `head` from the logits; returns its name. */
function lossHeadSeed(b: Builder, logits: string, head: LossHead): string {
  const k = b.shape(logits)[1];
  // d margin / d logits = onehot(goal) − onehot(best other class).
  const big = b.constant('head_big', [], [1e9]);
  const [pushed] = b.emit('Mul', [HEAD_ONEHOT, big]);
  const [masked] = b.emit('Sub', [logits, pushed]);
  const [other] = b.emit('ArgMax', [masked], { axis: 1, keepdims: 0 });
  const depth = b.constant('head_depth', [1], [k], 'int32');
  const values = b.constant('head_values', [2], [0, 1]);
  const [otherOneHot] = b.emit('OneHot', [other, depth, values], { axis: -1 });
  const [dMargin] = b.emit('Sub', [HEAD_ONEHOT, otherOneHot]);
  let d: string;
  if (head.kind === 'ce') {
    const [p] = b.emit('Softmax', [logits], { axis: -1 });
    const [dCe] = b.emit('Sub', [p, HEAD_ONEHOT]);
    const w = b.constant(b.fresh('head_w'), [], [head.marginWeight]);
    const [scaled] = b.emit('Mul', [dMargin, w]);
    [d] = b.emit('Sub', [dCe, scaled]);
  } else {
    [d] = b.emit('Neg', [dMargin]);
  }
  return b.emit('Mul', [d, HEAD_SIGN])[0];
}

/**
 * MaxPool is differentiated through its indices: the forward node gains an `Indices` output and
 * dy is scattered (summed) onto the positions it names in a zero tensor of x's shape.
 */
function maxPoolGradient(b: Builder, node: OnnxNode, dy: string, indices: string): string {
  const [shape] = b.emit('Shape', [node.inputs[0]]);
  const [zeros] = b.emit('ConstantOfShape', [shape]);
  const flat = b.constant('flat_shape', [1], [-1], 'int32');
  const [zerosFlat] = b.emit('Reshape', [zeros, flat]);
  const [indicesFlat] = b.emit('Reshape', [indices, flat]);
  const [dyFlat] = b.emit('Reshape', [dy, flat]);
  const [scattered] = b.emit('ScatterElements', [zerosFlat, indicesFlat, dyFlat], {
    axis: 0,
    reduction: 'add',
  });
  return b.emit('Reshape', [scattered, shape])[0];
}

/**
 * `graph` (one input, output `output`) with an extra input `d_<output>` and an extra output
 * `d_<input>`: the vector-Jacobian product of the output with respect to the input. `shapes`
 * gives every value's shape at batch 1 (any other batch works).
 */
export function vjpGraph(
  model: OnnxModel,
  shapes: Map<string, number[]>,
  output = model.graph.outputs[0].name,
  head?: LossHead,
): OnnxModel {
  const g = model.graph;
  const inputName = g.inputs[0].name;
  const nodes: OnnxNode[] = g.nodes.map((n) => ({
    ...n,
    outputs: [...n.outputs],
    attributes: { ...n.attributes },
  }));
  const initializers = new Map(g.initializers);
  let counter = 0;
  const b: Builder = {
    nodes,
    initializers,
    fresh: (prefix) => `grad/${prefix}_${counter++}`,
    emit(opType, inputs, attributes = {}, outputs = 1) {
      const names = Array.from({ length: outputs }, () => b.fresh(opType.toLowerCase()));
      nodes.push({ opType, name: names[0], domain: '', inputs, outputs: names, attributes });
      return names;
    },
    constant(name, dims, values, dtype = 'float32') {
      const full = name.startsWith('grad/') ? name : `grad/${name}`;
      if (!initializers.has(full)) {
        const data = dtype === 'float32' ? Float32Array.from(values) : Int32Array.from(values);
        initializers.set(full, { name: full, dims, dtype, data });
      }
      return full;
    },
    shape(value) {
      const s = shapes.get(value);
      if (s === undefined) throw new ParryError('INTERNAL', `vjpGraph: no shape for '${value}'`);
      return s;
    },
  };
  // Which values depend on the input (only those need gradients).
  const live = new Set([inputName]);
  for (const n of g.nodes)
    if (n.inputs.some((i) => live.has(i))) for (const o of n.outputs) live.add(o);
  if (!live.has(output))
    throw new ParryError('BAD_INPUT', `vjpGraph: '${output}' does not depend on the input`);
  // Max pools on the path keep their indices for the backward pass.
  const indicesOf = new Map<OnnxNode, string>();
  for (const n of nodes) {
    if (n.opType === 'MaxPool' && live.has(n.outputs[0])) {
      if (attr(n, 'ceil_mode', 0) !== 0) throw unsupported(n, 'ceil_mode = 1');
      if (attr(n, 'storage_order', 0) !== 0) throw unsupported(n, 'storage_order = 1');
      const indices = n.outputs[1] || b.fresh('maxpool_indices');
      n.outputs = [n.outputs[0], indices];
      indicesOf.set(n, indices);
    }
  }
  const forwardCount = nodes.length;
  const seed = head ? lossHeadSeed(b, output, head) : `d_${output}`;
  const grads = new Map<string, string[]>([[output, [seed]]]);
  const gradientOf = (value: string): string | undefined => {
    const parts = grads.get(value);
    if (parts === undefined) return undefined;
    if (parts.length === 1) return parts[0];
    const [sum] = b.emit('Sum', parts);
    grads.set(value, [sum]);
    return sum;
  };
  for (let k = forwardCount - 1; k >= 0; k--) {
    const node = nodes[k];
    if (!live.has(node.outputs[0])) continue;
    const dy = gradientOf(node.outputs[0]);
    if (dy === undefined) continue;
    const needs = node.inputs.map((i) => live.has(i));
    let dxs: (string | undefined)[];
    if (node.opType === 'MaxPool') {
      dxs = [maxPoolGradient(b, node, dy, indicesOf.get(node)!)];
    } else {
      const rule = GRADIENT_RULES[node.opType];
      if (rule === undefined) {
        throw new ParryError(
          'UNSUPPORTED',
          `no gradient rule for ONNX operator ${node.opType} (node '${node.name}')`,
        );
      }
      dxs = rule(b, node, dy, needs);
    }
    dxs.forEach((dx, i) => {
      const name = node.inputs[i];
      if (dx === undefined || !live.has(name)) return;
      grads.set(name, [...(grads.get(name) ?? []), dx]);
    });
  }
  const dInput = gradientOf(inputName);
  if (dInput === undefined)
    throw new ParryError('INTERNAL', 'vjpGraph: the input received no gradient');
  const outName = `d_${inputName}`;
  nodes.push({
    opType: 'Identity',
    name: outName,
    domain: '',
    inputs: [dInput],
    outputs: [outName],
    attributes: {},
  });
  const logits = g.outputs.find((o) => o.name === output) ?? { name: output, shape: [] };
  const graph: OnnxGraph = {
    name: `${g.name}_vjp`,
    nodes,
    initializers,
    inputs: [
      ...g.inputs,
      ...(head
        ? [
            { name: HEAD_ONEHOT, shape: logits.shape },
            { name: HEAD_SIGN, shape: [1] },
          ]
        : [{ name: seed, shape: logits.shape }]),
    ],
    outputs: [logits, { name: outName, shape: g.inputs[0].shape }],
  };
  return { ...model, opsets: [{ domain: '', version: GRADIENT_OPSET }], graph };
}
