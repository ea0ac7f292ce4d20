/**
 * ONNX operators as tfjs ops, so an ONNX classifier runs (and is differentiated by `tf.grad`) on
 * any tfjs backend. Tensors keep ONNX's layout (NCHW for images); convolutions and pooling
 * transpose to tfjs's NHWC and back. Each entry reads its node's inputs and attributes and
 * returns its outputs; an operator not listed here is refused by name when the model loads.
 */
import * as tf from '@tensorflow/tfjs-core';
import { windowPads } from '../../engine/onnx/pads.js';
import { ParryError } from '../../errors.js';
import type { OnnxAttribute, OnnxNode } from './graph.js';

/** A node's inputs (absent optional ones are undefined) and attributes. */
export interface OpContext {
  node: OnnxNode;
  inputs: (tf.Tensor | undefined)[];
}

type Op = (c: OpContext) => tf.Tensor[];

type Widen<T> = T extends number ? number : T extends string ? string : T;

const attr = <T extends OnnxAttribute>(c: OpContext, name: string, fallback: T): Widen<T> =>
  ((c.node.attributes[name] as T | undefined) ?? fallback) as Widen<T>;

const input = (c: OpContext, i: number): tf.Tensor => {
  const t = c.inputs[i];
  if (t === undefined) {
    throw new ParryError('BAD_FILE', `${c.node.opType} node '${c.node.name}' lacks input ${i}`);
  }
  return t;
};

/** Integer values of a (small, constant-like) tensor input, read synchronously. */
const ints = (t: tf.Tensor): number[] => Array.from(t.dataSync(), Number);

const unsupported = (c: OpContext, what: string) =>
  new ParryError('UNSUPPORTED', `${c.node.opType} node '${c.node.name}': ${what}`);

const toNhwc = (x: tf.Tensor) => tf.transpose(x, [0, 2, 3, 1]);
const toNchw = (x: tf.Tensor) => tf.transpose(x, [0, 3, 1, 2]);

/** A window op's pads [top, left, bottom, right] on x (NCHW). */
const padsOn = (c: OpContext, x: tf.Tensor, kernel: number[], strides: number[]) =>
  windowPads(c.node, x.shape.slice(2), kernel, strides);

function conv(c: OpContext): tf.Tensor[] {
  const x = input(c, 0) as tf.Tensor4D;
  const w = input(c, 1) as tf.Tensor4D; // [M, C / group, kH, kW]
  const b = c.inputs[2];
  if (x.rank !== 4) throw unsupported(c, `${x.rank - 2}-D convolution (2-D only)`);
  const kernel = [w.shape[2], w.shape[3]];
  const strides = attr(c, 'strides', [1, 1]) as [number, number];
  const dilations = attr(c, 'dilations', [1, 1]) as [number, number];
  const group = attr(c, 'group', 1);
  const [t, l, bo, r] = padsOn(c, x, kernel, strides);
  const pad: [[number, number], [number, number], [number, number], [number, number]] = [
    [0, 0],
    [t, bo],
    [l, r],
    [0, 0],
  ];
  const xs = toNhwc(x) as tf.Tensor4D;
  const channels = x.shape[1];
  const filters = w.shape[0];
  let y: tf.Tensor4D;
  if (group === 1) {
    const f = tf.transpose(w, [2, 3, 1, 0]) as tf.Tensor4D;
    y = tf.conv2d(xs, f, strides, pad, 'NHWC', dilations);
  } else if (group === channels && w.shape[1] === 1) {
    // Depthwise: output channel m reads input channel ⌊m / multiplier⌋.
    const f = tf.reshape(tf.transpose(w, [2, 3, 1, 0]), [
      kernel[0],
      kernel[1],
      channels,
      filters / channels,
    ]) as tf.Tensor4D;
    const padded = t + l + bo + r === 0 ? xs : (tf.pad(xs, pad) as tf.Tensor4D);
    y = tf.depthwiseConv2d(padded, f, strides, 'valid', 'NHWC', dilations);
  } else {
    const xg = tf.split(xs, group, 3);
    const wg = tf.split(w, group, 0);
    y = tf.concat(
      xg.map((xi, g) =>
        tf.conv2d(
          xi as tf.Tensor4D,
          tf.transpose(wg[g], [2, 3, 1, 0]) as tf.Tensor4D,
          strides,
          pad,
          'NHWC',
          dilations,
        ),
      ),
      3,
    ) as tf.Tensor4D;
  }
  if (b !== undefined) y = tf.add(y, b);
  return [toNchw(y)];
}

function pool(kind: 'max' | 'avg'): Op {
  return (c) => {
    const x = input(c, 0);
    if (x.rank !== 4) throw unsupported(c, `${x.rank - 2}-D pooling (2-D only)`);
    if (attr(c, 'ceil_mode', 0) !== 0) throw unsupported(c, 'ceil_mode = 1');
    if (attr(c, 'dilations', [1, 1]).some((d) => d !== 1)) throw unsupported(c, 'dilations');
    const kernel = attr(c, 'kernel_shape', [1, 1]) as [number, number];
    const strides = attr(c, 'strides', [1, 1]) as [number, number];
    const [t, l, b, r] = padsOn(c, x, kernel, strides);
    let xs = toNhwc(x) as tf.Tensor4D;
    if (t + l + b + r > 0) {
      if (kind === 'avg' && attr(c, 'count_include_pad', 0) === 0) {
        throw unsupported(c, 'padding without count_include_pad');
      }
      const fill = kind === 'max' ? Number.NEGATIVE_INFINITY : 0;
      xs = tf.pad(
        xs,
        [
          [0, 0],
          [t, b],
          [l, r],
          [0, 0],
        ],
        fill,
      );
    }
    const y =
      kind === 'max'
        ? tf.maxPool(xs, kernel, strides, 'valid')
        : tf.avgPool(xs, kernel, strides, 'valid');
    return [toNchw(y)];
  };
}

function gemm(c: OpContext): tf.Tensor[] {
  const a = input(c, 0) as tf.Tensor2D;
  const b = input(c, 1) as tf.Tensor2D;
  const bias = c.inputs[2];
  let y = tf.matMul(a, b, attr(c, 'transA', 0) === 1, attr(c, 'transB', 0) === 1);
  const alpha = attr(c, 'alpha', 1);
  if (alpha !== 1) y = tf.mul(y, alpha);
  if (bias !== undefined) {
    const beta = attr(c, 'beta', 1);
    y = tf.add(y, beta === 1 ? bias : tf.mul(bias, beta));
  }
  return [y];
}

function batchNorm(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const shape: number[] = [1, x.shape[1] as number, ...new Array<number>(x.rank - 2).fill(1)];
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => tf.reshape(input(c, i), shape));
  const std = tf.sqrt(tf.add(variance, attr(c, 'epsilon', 1e-5)));
  return [tf.add(tf.mul(tf.div(tf.sub(x, mean), std), scale), bias)];
}

/** Values an axis list names, from the attribute (older opsets) or the given input. */
function axesOf(c: OpContext, inputIndex: number): number[] | undefined {
  const fromInput = c.inputs[inputIndex];
  if (fromInput !== undefined) return ints(fromInput);
  return c.node.attributes.axes as number[] | undefined;
}

const positive = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

function reshape(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const target = ints(input(c, 1)).map((d, i) =>
    d === 0 && attr(c, 'allowzero', 0) === 0 ? x.shape[i] : d,
  );
  return [tf.reshape(x, target)];
}

function flatten(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const axis = positive(attr(c, 'axis', 1), x.rank);
  const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
  return [tf.reshape(x, [outer, -1])];
}

function pad(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const pads = c.inputs[1] !== undefined ? ints(c.inputs[1]) : attr(c, 'pads', [] as number[]);
  const value = c.inputs[2] !== undefined ? c.inputs[2].dataSync()[0] : attr(c, 'value', 0);
  const mode = attr(c, 'mode', 'constant');
  const paddings = x.shape.map((_, i) => [pads[i], pads[i + x.rank]] as [number, number]);
  if (pads.some((p) => p < 0)) throw unsupported(c, 'negative pads');
  if (mode === 'constant') return [tf.pad(x, paddings, value)];
  if (mode === 'reflect') return [tf.mirrorPad(x, paddings, 'reflect')];
  throw unsupported(c, `mode '${mode}'`);
}

function clip(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const lo = c.inputs[1] !== undefined ? c.inputs[1].dataSync()[0] : attr(c, 'min', -Infinity);
  const hi = c.inputs[2] !== undefined ? c.inputs[2].dataSync()[0] : attr(c, 'max', Infinity);
  return [tf.clipByValue(x, lo, hi)];
}

function unsqueeze(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const axes = axesOf(c, 1) ?? [];
  const rank = x.rank + axes.length;
  const sorted = axes.map((a) => positive(a, rank)).sort((a, b) => a - b);
  const shape = [...x.shape];
  for (const a of sorted) shape.splice(a, 0, 1);
  return [tf.reshape(x, shape)];
}

function squeeze(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const axes = axesOf(c, 1);
  return [
    tf.squeeze(
      x,
      axes?.map((a) => positive(a, x.rank)),
    ),
  ];
}

function slice(c: OpContext): tf.Tensor[] {
  const x = input(c, 0);
  const starts = ints(input(c, 1));
  const ends = ints(input(c, 2));
  const axes = c.inputs[3] !== undefined ? ints(c.inputs[3]) : starts.map((_, i) => i);
  const steps = c.inputs[4] !== undefined ? ints(c.inputs[4]) : starts.map(() => 1);
  if (steps.some((s) => s !== 1)) throw unsupported(c, 'steps other than 1');
  const begin = x.shape.map(() => 0);
  const size = [...x.shape];
  axes.forEach((a, i) => {
    const axis = positive(a, x.rank);
    const n = x.shape[axis];
    const clampTo = (v: number) => Math.max(0, Math.min(n, v < 0 ? v + n : v));
    begin[axis] = clampTo(starts[i]);
    size[axis] = Math.max(0, clampTo(ends[i]) - begin[axis]);
  });
  return [tf.slice(x, begin, size)];
}

const unary =
  (f: (x: tf.Tensor) => tf.Tensor): Op =>
  (c) => [f(input(c, 0))];

const binary =
  (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): Op =>
  (c) => [f(input(c, 0), input(c, 1))];

/** Every operator parry runs, by ONNX name. */
export const OPS: Record<string, Op> = {
  Conv: conv,
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: unary((x) => tf.mean(x, [2, 3], true)),
  GlobalMaxPool: unary((x) => tf.max(x, [2, 3], true)),
  Gemm: gemm,
  MatMul: binary((a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D)),
  BatchNormalization: batchNorm,
  Relu: unary(tf.relu),
  LeakyRelu: (c) => [tf.leakyRelu(input(c, 0), attr(c, 'alpha', 0.01))],
  Elu: (c) => {
    const alpha = attr(c, 'alpha', 1);
    const x = input(c, 0);
    // max(x, 0) + α·(e^min(x, 0) − 1): differentiable in tfjs (a `where` on x's sign is not).
    return [
      alpha === 1 ? tf.elu(x) : tf.add(tf.relu(x), tf.mul(tf.expm1(tf.minimum(x, 0)), alpha)),
    ];
  },
  Sigmoid: unary(tf.sigmoid),
  Tanh: unary(tf.tanh),
  Softplus: unary(tf.softplus),
  Clip: clip,
  Softmax: (c) => {
    const x = input(c, 0);
    const axis = positive(attr(c, 'axis', -1), x.rank);
    if (axis !== x.rank - 1) throw unsupported(c, 'softmax over an axis other than the last');
    return [tf.softmax(x)];
  },
  Add: binary(tf.add),
  Sub: binary(tf.sub),
  Mul: binary(tf.mul),
  Div: binary(tf.div),
  Concat: (c) => {
    const xs = c.inputs.filter((t): t is tf.Tensor => t !== undefined);
    return [tf.concat(xs, positive(attr(c, 'axis', 0), xs[0].rank))];
  },
  Flatten: flatten,
  Reshape: reshape,
  Transpose: (c) => [tf.transpose(input(c, 0), attr(c, 'perm', undefined as unknown as number[]))],
  Pad: pad,
  Identity: unary((x) => x),
  Dropout: unary((x) => x),
  Shape: (c) => [tf.tensor1d(input(c, 0).shape, 'int32')],
  Gather: (c) => {
    const x = input(c, 0);
    const indices = input(c, 1);
    const axis = positive(attr(c, 'axis', 0), x.rank);
    const idx = tf.where(tf.less(indices, 0), tf.add(indices, x.shape[axis]), indices);
    return [tf.gather(x, tf.cast(idx, 'int32'), axis)];
  },
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Slice: slice,
  Cast: (c) => {
    const to = attr(c, 'to', 1);
    return [tf.cast(input(c, 0), to === 1 || to === 10 || to === 11 ? 'float32' : 'int32')];
  },
};
