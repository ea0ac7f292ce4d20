/**
 * Per-example gradient rules of the fast clipping path (clipping.ts), for one trainable layer
 * given its input a [batch, ...] and the gradient g of the summed loss with respect to its
 * pre-activation output (each example's row of g is that example's own output gradient: nothing
 * mixes examples). Each rule returns the squared norms of the per-example weight gradients and
 * their sum scaled by per-example factors, in the layer's weight shapes.
 *
 * - Dense (rank-2 input): the kernel gradient of example i is a_i·g_iᵀ, so its squared norm is
 *   ‖a_i‖²·‖g_i‖² without forming it (the "ghost norm", Goodfellow 2015; Li et al. 2022), the
 *   bias's ‖g_i‖²; the scaled sum is Aᵀ·diag(f)·G.
 * - Conv2D: the kernel gradients of all examples at once from one depthwise convolution (see
 *   convKernelGrads), [cin·kh·kw, batch, cout]; the bias's Σ_{y,x} g_i[y, x, :].
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

type Activation = { apply(x: tf.Tensor): tf.Tensor };

/** A trainable layer of the fast path, with the variables its gradient rule fills. */
export interface TrainableStep {
  kind: 'dense' | 'conv2d';
  layer: tfl.layers.Layer;
  kernel: tf.Variable;
  bias?: tf.Variable;
  activation?: Activation;
}

/** A layer's pre-activation output: x·W or conv(x, W), plus the bias. */
export function affine(s: TrainableStep, a: tf.Tensor): tf.Tensor {
  const z = s.kind === 'dense' ? tf.matMul(a as tf.Tensor2D, s.kernel) : conv(s, a);
  return s.bias ? tf.add(z, s.bias) : z;
}

/** Squared per-example gradient norms of one layer and its scaled sums. */
export function perExample(
  s: TrainableStep,
  a: tf.Tensor,
  g: tf.Tensor,
): {
  normSq: tf.Tensor1D;
  kernelSum: (f: tf.Tensor1D) => tf.Tensor;
  biasSum: (f: tf.Tensor1D) => tf.Tensor;
} {
  const m = g.shape[0];
  if (s.kind === 'dense') {
    const g2 = tf.sum(tf.square(g), 1);
    const a2 = tf.sum(tf.square(a), 1);
    const normSq = (s.bias ? tf.add(tf.mul(a2, g2), g2) : tf.mul(a2, g2)) as tf.Tensor1D;
    const scaled = (f: tf.Tensor1D) => tf.mul(g, tf.reshape(f, [m, 1]));
    return {
      normSq,
      kernelSum: (f) => tf.matMul(a as tf.Tensor2D, scaled(f) as tf.Tensor2D, true, false),
      biasSum: (f) => tf.sum(scaled(f), 0),
    };
  }
  const c = s.layer.getConfig() as unknown as ConvConfig;
  const kernel = convKernelGrads(a as tf.Tensor4D, g as tf.Tensor4D, c, s.kernel.shape);
  const biases = tf.sum(g, [1, 2]); // [m, cout]
  return {
    normSq: (s.bias
      ? tf.add(kernel.normSq, tf.sum(tf.square(biases), 1))
      : kernel.normSq) as tf.Tensor1D,
    kernelSum: kernel.sum,
    biasSum: (f) => tf.sum(tf.mul(biases, tf.reshape(f, [m, 1])), 0),
  };
}

/**
 * Per-example kernel gradients of a Conv2D, W_i[p, q, c, o] = Σ_{y,x} a_i[y·sh + p·dh,
 * x·sw + q·dw, c]·g_i[y, x, o] (a padded as the layer pads), as their squared norms and a scaled
 * sum. All of them are one depthwise convolution: the inputs with batch and channel axes swapped
 * ([cin, h, w, batch]) filtered by the output gradients ([oh, ow, batch, cout], channel
 * multiplier cout), the layer's strides becoming dilations and its dilations strides (tfjs
 * convolutions have one of the two at 1, so the depthwise op accepts them). It yields
 * [cin, kh, kw, batch·cout] without im2col: on wasm, im2col plus a batched product took about
 * twice as long (batched products run in a scalar loop there).
 */
function convKernelGrads(
  a: tf.Tensor4D,
  g: tf.Tensor4D,
  c: ConvConfig,
  kernelShape: number[],
): { normSq: tf.Tensor1D; sum: (f: tf.Tensor1D) => tf.Tensor } {
  const [m, oh, ow, cout] = g.shape;
  const [kh, kw, cin] = kernelShape;
  const [sh, sw] = pair(c.strides, 1);
  const [dh, dw] = pair(c.dilationRate, 1);
  // Only the rows and columns the convolution reads: the depthwise output is then kh x kw.
  const rows = (oh - 1) * sh + (kh - 1) * dh + 1;
  const cols = (ow - 1) * sw + (kw - 1) * dw + 1;
  const input = tf.slice(padAsLayer(a, c), [0, 0, 0, 0], [m, rows, cols, cin]);
  const w = tf.depthwiseConv2d(
    tf.transpose(input, [3, 1, 2, 0]) as tf.Tensor4D,
    tf.transpose(g, [1, 2, 0, 3]) as tf.Tensor4D,
    [dh, dw],
    'valid',
    'NHWC',
    [sh, sw],
  );
  const perExample = tf.reshape(w, [cin * kh * kw, m, cout]);
  return {
    normSq: tf.sum(tf.square(perExample), [0, 2]) as tf.Tensor1D,
    sum: (f) =>
      tf.transpose(
        tf.reshape(tf.sum(tf.mul(perExample, tf.reshape(f, [1, m, 1])), 1), [cin, kh, kw, cout]),
        [1, 2, 0, 3],
      ),
  };
}

interface ConvConfig {
  kernelSize: number | number[];
  strides: number | number[];
  dilationRate?: number | number[];
  padding: 'same' | 'valid';
}

const pair = (v: number | number[] | undefined, fallback: number): [number, number] =>
  v === undefined ? [fallback, fallback] : typeof v === 'number' ? [v, v] : [v[0], v[1] ?? v[0]];

function conv(s: TrainableStep, a: tf.Tensor): tf.Tensor {
  const c = s.layer.getConfig() as unknown as ConvConfig;
  return tf.conv2d(
    a as tf.Tensor4D,
    s.kernel as tf.Tensor4D,
    pair(c.strides, 1),
    c.padding,
    'NHWC',
    pair(c.dilationRate, 1),
  );
}

const span = (k: number, d: number) => (k - 1) * d + 1;

/** x [batch, h, w, c] padded as the convolution pads ('same': the odd pixel after, as TF). */
function padAsLayer(x: tf.Tensor4D, config: ConvConfig): tf.Tensor4D {
  if (config.padding !== 'same') return x;
  const [kh, kw] = pair(config.kernelSize, 1);
  const [sh, sw] = pair(config.strides, 1);
  const [dh, dw] = pair(config.dilationRate, 1);
  const [, h, w] = x.shape;
  const th = Math.max((Math.ceil(h / sh) - 1) * sh + span(kh, dh) - h, 0);
  const tw = Math.max((Math.ceil(w / sw) - 1) * sw + span(kw, dw) - w, 0);
  const ph = Math.floor(th / 2);
  const pw = Math.floor(tw / 2);
  return tf.pad(x, [
    [0, 0],
    [ph, th - ph],
    [pw, tw - pw],
    [0, 0],
  ]);
}
