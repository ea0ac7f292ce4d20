/**
 * Linear relaxations for CROWN (Zhang et al., "Efficient Neural Network Robustness Certification
 * with General Activation Functions", NeurIPS 2018) and pooling-window geometry shared by IBP and
 * CROWN. Every relaxation is sound on the whole interval [l, u] it is given: for each element,
 * aL·x + bL ≤ f(x) ≤ aU·x + bU for all x in [l, u].
 */
import * as tf from '@tensorflow/tfjs-core';
import { type ActivationFn, applyActivation, type PoolGeometry } from './layers.js';

/** Per-element lines: aL·x + bL ≤ f(x) ≤ aU·x + bU on [l, u]. Shapes of l. */
export interface Lines {
  aL: tf.Tensor;
  bL: tf.Tensor;
  aU: tf.Tensor;
  bU: tf.Tensor;
}

/** Below this width an interval gets constant bounds f(l) ≤ f(x) ≤ f(u): chords lose precision. */
const MIN_WIDTH = 1e-4;

const CONVEX: ReadonlySet<ActivationFn> = new Set(['elu', 'softplus']);
/** Convex on (−∞, 0], concave on [0, ∞). */
const S_SHAPED: ReadonlySet<ActivationFn> = new Set(['sigmoid', 'tanh', 'softsign']);

/**
 * ReLU and leaky ReLU (slope α ≤ 1 below 0), the paper's rule: stable neurons are linear; an
 * unstable one (l < 0 < u) gets the chord through (l, αl) and (u, u) as upper line and the
 * adaptive lower line through 0 with slope 1 if u > −l, else α.
 */
function reluLines(alpha: number, l: tf.Tensor, u: tf.Tensor): Lines {
  const active = tf.greaterEqual(l, 0);
  const inactive = tf.lessEqual(u, 0);
  const unstable = tf.logicalNot(tf.logicalOr(active, inactive));
  const width = tf.where(unstable, tf.sub(u, l), tf.onesLike(l));
  const chord = tf.div(tf.sub(u, tf.mul(l, alpha)), width);
  const stableSlope = tf.where(active, tf.onesLike(l), tf.fill(l.shape, alpha));
  const aU = tf.where(unstable, chord, stableSlope);
  const bU = tf.where(unstable, tf.sub(tf.mul(l, alpha), tf.mul(chord, l)), tf.zerosLike(l));
  const adaptive = tf.where(tf.greater(u, tf.neg(l)), tf.onesLike(l), tf.fill(l.shape, alpha));
  const aL = tf.where(unstable, adaptive, stableSlope);
  return { aL, bL: tf.zerosLike(l), aU, bU };
}

/** f′ for the smooth activations that get tangent lines. */
function derivative(fn: ActivationFn, x: tf.Tensor): tf.Tensor {
  switch (fn) {
    case 'sigmoid': {
      const s = tf.sigmoid(x);
      return tf.mul(s, tf.sub(1, s));
    }
    case 'tanh':
      return tf.sub(1, tf.square(tf.tanh(x)));
    case 'softsign':
      return tf.reciprocal(tf.square(tf.add(tf.abs(x), 1)));
    case 'softplus':
      return tf.sigmoid(x);
    case 'elu':
      return tf.where(tf.greater(x, 0), tf.onesLike(x), tf.exp(tf.minimum(x, 0)));
    default:
      return tf.zerosLike(x);
  }
}

/**
 * Lines for any monotone activation. Where f is convex on [l, u] the upper line is the chord
 * and the lower line the tangent at the midpoint; where concave, the other way round; elsewhere
 * (an S-shaped function straddling 0, relu6, selu, hard sigmoid) the constant lines f(l), f(u),
 * which are sound for a non-decreasing f but no tighter than IBP at that neuron.
 */
export function activationLines(
  fn: ActivationFn,
  alpha: number,
  l: tf.Tensor,
  u: tf.Tensor,
): Lines {
  if (fn === 'relu') return reluLines(0, l, u);
  if (fn === 'leakyRelu') return reluLines(alpha, l, u);
  const fl = applyActivation(fn, alpha, l);
  const fu = applyActivation(fn, alpha, u);
  const zero = tf.zerosLike(l);
  if (!CONVEX.has(fn) && !S_SHAPED.has(fn)) return { aL: zero, bL: fl, aU: zero, bU: fu };
  const wide = tf.greater(tf.sub(u, l), MIN_WIDTH);
  const convex = CONVEX.has(fn) ? wide : tf.logicalAnd(wide, tf.lessEqual(u, 0));
  const concave = CONVEX.has(fn) ? tf.zerosLike(wide) : tf.logicalAnd(wide, tf.greaterEqual(l, 0));
  const width = tf.where(wide, tf.sub(u, l), tf.onesLike(l));
  const chord = tf.div(tf.sub(fu, fl), width);
  const chordB = tf.sub(fl, tf.mul(chord, l));
  const m = tf.mul(tf.add(l, u), 0.5);
  const tangent = derivative(fn, m);
  const tangentB = tf.sub(applyActivation(fn, alpha, m), tf.mul(tangent, m));
  const pick = (convexV: tf.Tensor, concaveV: tf.Tensor, otherwise: tf.Tensor) =>
    tf.where(convex, convexV, tf.where(concave, concaveV, otherwise));
  return {
    aL: pick(tangent, chord, zero),
    bL: pick(tangentB, chordB, fl),
    aU: pick(chord, tangent, zero),
    bU: pick(chordB, tangentB, fu),
  };
}

/** [ph, pw, 1, P] with a single 1 per output channel: channel o reads window offset o. */
function offsetKernel(g: PoolGeometry): tf.Tensor4D {
  const [ph, pw] = g.poolSize;
  return tf.reshape(tf.eye(ph * pw), [ph, pw, 1, ph * pw]);
}

/**
 * The pooling windows of x `[B, h, w, c]` as `[B, ho, wo, c, P]` (P = ph·pw offsets, row-major),
 * with the same padding rule as tfjs pooling; padded positions hold `fill`. Written as a
 * convolution with one-hot kernels, the exact transpose of `scatterWindows`.
 */
export function poolWindows(x: tf.Tensor4D, g: PoolGeometry, fill: number): tf.Tensor5D {
  const [b, h, w, c] = x.shape;
  const kernel = offsetKernel(g);
  const perChannel = tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [b * c, h, w, 1]) as tf.Tensor4D;
  const windows = tf.conv2d(perChannel, kernel, g.strides, g.padding);
  const [, ho, wo, p] = windows.shape;
  const valid = tf.conv2d(tf.ones([1, h, w, 1]) as tf.Tensor4D, kernel, g.strides, g.padding);
  const filled = tf.where(tf.greater(valid, 0.5), windows, tf.fill(windows.shape, fill));
  return tf.transpose(tf.reshape(filled, [b, c, ho, wo, p]), [0, 2, 3, 1, 4]);
}

/** Number of non-padded positions in each window, `[1, ho, wo, 1]`. */
export function windowCounts(h: number, w: number, g: PoolGeometry): tf.Tensor4D {
  const [ph, pw] = g.poolSize;
  const kernel = tf.ones([ph, pw, 1, 1]) as tf.Tensor4D;
  return tf.conv2d(tf.ones([1, h, w, 1]) as tf.Tensor4D, kernel, g.strides, g.padding);
}

/**
 * Transpose of `poolWindows`: adds v `[N, ho, wo, c, P]` back onto the input positions each
 * window offset reads, giving `[N, h, w, c]` (contributions of padded positions are dropped).
 */
export function scatterWindows(v: tf.Tensor5D, h: number, w: number, g: PoolGeometry): tf.Tensor4D {
  const [n, ho, wo, c, p] = v.shape;
  const perChannel = tf.reshape(tf.transpose(v, [0, 3, 1, 2, 4]), [
    n * c,
    ho,
    wo,
    p,
  ]) as tf.Tensor4D;
  const back = tf.conv2dTranspose(
    perChannel,
    offsetKernel(g),
    [n * c, h, w, 1],
    g.strides,
    g.padding,
  );
  return tf.transpose(tf.reshape(back, [n, c, h, w]), [0, 2, 3, 1]);
}

/** Lower-relaxation data of max pooling over input bounds [l, u]. */
export interface MaxPoolLines {
  /** One-hot `[B, ho, wo, c, P]`: the window element with the largest lower bound, x_k. */
  pick: tf.Tensor5D;
  /** `[B, ho, wo, c]`: x_k's lower bound is ≥ every other upper bound, so max = x_k exactly. */
  dominant: tf.Tensor;
  /** `[B, ho, wo, c]`: max of the upper bounds, a constant upper line where not dominant. */
  upper: tf.Tensor;
}

const FILL = -1e30;

/**
 * Max pooling y = max_i x_i relaxed as x_k ≤ y (k = argmax of the lower bounds) and
 * y ≤ max_i u_i, or y = x_k when x_k dominates its window. Sound, simpler (and looser) than the
 * optimised relaxations of auto_LiRPA.
 */
export function maxPoolLines(l: tf.Tensor4D, u: tf.Tensor4D, g: PoolGeometry): MaxPoolLines {
  const lw = poolWindows(l, g, FILL);
  const uw = poolWindows(u, g, FILL);
  const p = lw.shape[4];
  // int32 then cast: the wasm backend's OneHot writes int bits into a float32 output.
  const pick = tf.cast(tf.oneHot(tf.argMax(lw, 4), p), 'float32') as tf.Tensor5D;
  const lk = tf.max(lw, 4);
  const otherU = tf.max(tf.where(tf.greater(pick, 0.5), tf.fill(uw.shape, FILL), uw), 4);
  return { pick, dominant: tf.greaterEqual(lk, otherU), upper: tf.max(uw, 4) };
}
