/**
 * Interval bound propagation (Gowal et al., "On the Effectiveness of Interval Bound Propagation
 * for Training Verifiably Robust Models", 2018).
 *
 * Threat model: L∞ ball of radius eps around each example, intersected with the classifier's
 * bounds, i.e. the box [max(x − eps, lo), min(x + eps, hi)]. Each op maps a box to a box that
 * contains its image: affine ops in centre/radius form (μ' = W·μ + b, r' = |W|·r, exact for one
 * affine op), monotone ops (activations, max and average pooling) on the two ends.
 *
 * The margin bound is the tight one: for a final Dense layer, (W_y − W_j)·h + (b_y − b_j) is
 * bounded over the penultimate box h directly, not as lower_y − upper_j (which is looser; it is
 * used only when the model does not end in a Dense layer).
 */
import * as tf from '@tensorflow/tfjs-core';
import { check } from '../../errors.js';
import type { TfjsClassifier } from '../tfjs-classifier.js';
import { applyActivation, buildNetwork, type Network, type Op } from './layers.js';

/** Elementwise bounds lower ≤ f ≤ upper, `[batch, ...shape]`. */
export interface Interval {
  lower: tf.Tensor;
  upper: tf.Tensor;
}

export interface LogitBounds {
  /** `[batch, numClasses]` bounds on the logits over the whole box. */
  lower: tf.Tensor2D;
  upper: tf.Tensor2D;
}

export interface MarginBounds extends LogitBounds {
  /** `[batch, numClasses]`: lower bound on logit_y − logit_j over the box; 0 at j = y. */
  marginLower: tf.Tensor2D;
}

/** Per-example certificate read from margin bounds; tensors belong to the caller. */
export interface CertifyBoundsResult extends MarginBounds {
  /** min over j ≠ y of the margin lower bound > 0: the label is certified on the whole box. */
  certified: boolean[];
  /** min over j ≠ y of the margin lower bound. */
  minMargin: number[];
  /** Network passes spent, counted as in `passes` of each method (see the CLI doc). */
  passes: number;
}

/** Throws unless x fits the model, eps ≥ 0 is finite and labels (if given) are `[batch]`. */
export function checkArgs(
  fn: string,
  model: TfjsClassifier,
  x: tf.Tensor,
  eps: number,
  labels?: tf.Tensor1D,
): void {
  model.checkInput(x);
  check(
    Number.isFinite(eps) && eps >= 0,
    () => `${fn}: eps must be a finite number >= 0, got ${eps}`,
    'BAD_OPTION',
  );
  if (labels != null) {
    check(
      labels.rank === 1 && labels.shape[0] === x.shape[0],
      () => `${fn}: labels must have shape [${x.shape[0]}], got [${labels.shape}]`,
    );
  }
}

/** The L∞ ball of radius eps around x clipped to `bounds`. */
export function inputBox(x: tf.Tensor, eps: number, bounds: [number, number]): Interval {
  const z = tf.cast(x, 'float32');
  return {
    lower: tf.maximum(tf.sub(z, eps), bounds[0]),
    upper: tf.minimum(tf.add(z, eps), bounds[1]),
  };
}

/** Linear part of an affine op (dense, conv2d or scale), without the bias. */
export function linearPart(op: Op, x: tf.Tensor, abs = false): tf.Tensor {
  const w = (t: tf.Tensor) => (abs ? tf.abs(t) : t);
  switch (op.kind) {
    case 'dense': {
      const [inDim, outDim] = op.kernel.shape;
      const y = tf.matMul(tf.reshape(x, [-1, inDim]), w(op.kernel));
      return tf.reshape(y, [...x.shape.slice(0, -1), outDim]);
    }
    case 'conv2d':
      return tf.conv2d(
        x as tf.Tensor4D,
        w(op.kernel) as tf.Tensor4D,
        op.strides,
        op.padding,
        'NHWC',
        op.dilations,
      );
    case 'scale':
      return tf.mul(x, w(op.scale));
    default:
      throw new Error(`linearPart: ${op.kind} is not affine`);
  }
}

/** The bias (or shift) of an affine op, if any. */
export function biasOf(op: Op): tf.Tensor | undefined {
  if (op.kind === 'scale') return op.shift;
  if (op.kind === 'dense' || op.kind === 'conv2d') return op.bias;
  return undefined;
}

export const isAffine = (op: Op) =>
  op.kind === 'dense' || op.kind === 'conv2d' || op.kind === 'scale';

/** The image box of one op. `outShape` is the shape of one example leaving it. */
export function intervalStep(op: Op, iv: Interval, outShape: number[]): Interval {
  const { lower: l, upper: u } = iv;
  switch (op.kind) {
    case 'dense':
    case 'conv2d':
    case 'scale': {
      const c = tf.mul(tf.add(l, u), 0.5);
      const r = tf.mul(tf.sub(u, l), 0.5);
      const b = biasOf(op);
      const mu = b == null ? linearPart(op, c) : tf.add(linearPart(op, c), b);
      const rho = linearPart(op, r, true);
      return { lower: tf.sub(mu, rho), upper: tf.add(mu, rho) };
    }
    case 'activation':
      return {
        lower: applyActivation(op.fn, op.alpha, l),
        upper: applyActivation(op.fn, op.alpha, u),
      };
    case 'maxPool':
      return {
        lower: tf.maxPool(l as tf.Tensor4D, op.poolSize, op.strides, op.padding),
        upper: tf.maxPool(u as tf.Tensor4D, op.poolSize, op.strides, op.padding),
      };
    case 'avgPool':
      return {
        lower: tf.avgPool(l as tf.Tensor4D, op.poolSize, op.strides, op.padding),
        upper: tf.avgPool(u as tf.Tensor4D, op.poolSize, op.strides, op.padding),
      };
    case 'globalAvgPool':
      return { lower: tf.mean(l, [1, 2]), upper: tf.mean(u, [1, 2]) };
    case 'reshape':
      return {
        lower: tf.reshape(l, [l.shape[0], ...outShape]),
        upper: tf.reshape(u, [u.shape[0], ...outShape]),
      };
    case 'transpose': {
      const perm = [0, ...op.perm.map((j) => j + 1)];
      return { lower: tf.transpose(l, perm), upper: tf.transpose(u, perm) };
    }
    case 'residual': {
      // The box of a sum is the sum of the boxes (sound; blind to how the branches correlate).
      const ends = op.branches.map((branch) => propagate(branch, iv));
      return {
        lower: tf.addN(ends.map((e) => e.lower)),
        upper: tf.addN(ends.map((e) => e.upper)),
      };
    }
  }
}

/** The box leaving op `to − 1` (by default the logits'), from the box `iv` entering op `from`. */
export function propagate(net: Network, iv: Interval, from = 0, to = net.ops.length): Interval {
  let cur = iv;
  for (let k = from; k < to; k++) cur = intervalStep(net.ops[k], cur, net.shapes[k + 1]);
  return cur;
}

/** Rows e_y − e_j for every class j, one set per example: `[batch, K, K]` float32. */
export function marginSpec(labels: tf.Tensor1D, k: number): tf.Tensor3D {
  const own = tf.expandDims(tf.cast(tf.oneHot(tf.cast(labels, 'int32'), k), 'float32'), 1);
  return tf.sub(own, tf.expandDims(tf.eye(k), 0)) as tf.Tensor3D;
}

/** Does the network end in a Dense layer on flat features (for the tight margin)? */
function endsInDense(net: Network): boolean {
  const last = net.ops[net.ops.length - 1];
  return last?.kind === 'dense' && net.shapes[net.ops.length - 1].length === 1;
}

/**
 * IBP logit and margin bounds over the box `box` (inside `tf.tidy`). With a final Dense layer
 * the margin is bounded through it in one step: lower of (W_y − W_j)·h + b_y − b_j over the
 * penultimate box h.
 */
export function ibpMargins(net: Network, box: Interval, labels: tf.Tensor1D): MarginBounds {
  const numClasses = net.shapes[net.ops.length][0];
  const oneHot = tf.oneHot(tf.cast(labels, 'int32'), numClasses);
  if (!endsInDense(net)) {
    const out = propagate(net, box);
    const lowerY = tf.sum(tf.mul(out.lower, oneHot), 1, true);
    const margin = tf.where(
      tf.cast(oneHot, 'bool'),
      tf.zerosLike(out.lower),
      tf.sub(lowerY, out.upper),
    );
    return {
      lower: out.lower as tf.Tensor2D,
      upper: out.upper as tf.Tensor2D,
      marginLower: margin as tf.Tensor2D,
    };
  }
  const last = net.ops.length - 1;
  const h = propagate(net, box, 0, last);
  const out = intervalStep(net.ops[last], h, net.shapes[last + 1]);
  const op = net.ops[last] as Extract<Op, { kind: 'dense' }>;
  const [b, k] = [labels.shape[0], numClasses];
  const spec = marginSpec(labels, k);
  // Centre: the margins of the logits at the box's centre, mu_y − mu_j.
  const c = tf.mul(tf.add(h.lower, h.upper), 0.5);
  const centre = op.bias == null ? linearPart(op, c) : tf.add(linearPart(op, c), op.bias);
  const mu = tf.squeeze(tf.matMul(tf.expandDims(centre, 1), spec, false, true), [1]);
  // Radius: |W_y − W_j|·r, with W·(e_y − e_j) for every example and j as one product
  // (matMul only, so the bound is differentiable w.r.t. W on every backend).
  const inDim = op.kernel.shape[0];
  const columns = tf.reshape(tf.transpose(spec, [2, 0, 1]), [k, b * k]);
  const wDiff = tf.transpose(tf.reshape(tf.matMul(op.kernel, columns), [inDim, b, k]), [1, 0, 2]);
  const r = tf.expandDims(tf.mul(tf.sub(h.upper, h.lower), 0.5), 1);
  const rho = tf.squeeze(tf.matMul(r, tf.abs(wDiff)), [1]);
  const margin = tf.where(tf.cast(oneHot, 'bool'), tf.zerosLike(mu), tf.sub(mu, rho));
  return {
    lower: out.lower as tf.Tensor2D,
    upper: out.upper as tf.Tensor2D,
    marginLower: margin as tf.Tensor2D,
  };
}

/**
 * IBP bounds on the logits of every example of x `[batch, ...inputShape]` over its L∞ ball of
 * radius eps clipped to `model.bounds`. Returns `[batch, numClasses]` tensors the caller owns.
 * Throws 'UNSUPPORTED' naming the first layer without a bound rule.
 */
export function ibpBounds(model: TfjsClassifier, x: tf.Tensor, eps: number): LogitBounds {
  checkArgs('ibpBounds', model, x, eps);
  return tf.tidy(() => {
    const net = buildNetwork(model, 'ibpBounds');
    const out = propagate(net, inputBox(x, eps, model.bounds));
    return { lower: out.lower as tf.Tensor2D, upper: out.upper as tf.Tensor2D };
  });
}

/** `ibpBounds` plus the margin lower bounds for `labels` `[batch]`. Caller owns the tensors. */
export function ibpMarginBounds(
  model: TfjsClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  eps: number,
): MarginBounds {
  checkArgs('ibpMarginBounds', model, x, eps, labels);
  return tf.tidy(() => {
    const box = inputBox(x, eps, model.bounds);
    const m = ibpMargins(buildNetwork(model, 'ibpMarginBounds'), box, labels);
    return { lower: m.lower, upper: m.upper, marginLower: m.marginLower };
  });
}

/** min over j ≠ y of the margin bounds `[batch, numClasses]` (y's own entry is ignored). */
export async function readCertificates(
  marginLower: tf.Tensor2D,
  labels: tf.Tensor1D,
): Promise<{ certified: boolean[]; minMargin: number[] }> {
  const min = tf.tidy(() => {
    const k = marginLower.shape[1];
    const own = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), k), 'bool');
    return tf.min(
      tf.where(own, tf.fill(marginLower.shape, Number.POSITIVE_INFINITY), marginLower),
      1,
    );
  });
  const minMargin = Array.from(await min.data());
  min.dispose();
  return { certified: minMargin.map((m) => m > 0), minMargin };
}

/**
 * IBP certificates: example i is certified when the margin lower bound is positive for every
 * other class, i.e. the label y_i is the argmax everywhere in the box. The pass count is 2 per
 * example (a centre and a radius pass through every affine op).
 */
export async function certifyIbp(
  model: TfjsClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  eps: number,
): Promise<CertifyBoundsResult> {
  const bounds = ibpMarginBounds(model, x, labels, eps);
  const read = await readCertificates(bounds.marginLower, labels);
  return { ...bounds, ...read, passes: 2 * x.shape[0] };
}
