/**
 * CROWN's backward step for every op kind: Λ `[B, R, ...out]` (R specification rows per
 * example) becomes Λ' `[B, R, ...in]` plus a constant `[B, R]`, such that Λ·op(x) ≥ Λ'·x + c for
 * every x within the op's input bounds. Affine ops are exact (Dense by Wᵀ, Conv2D by
 * conv2dTranspose, pooling by scattering windows back); nonlinear ops use the relaxations of
 * relaxations.ts, picking the lower line where a coefficient is positive, the upper where negative.
 */
import * as tf from '@tensorflow/tfjs-core';
import { biasOf, type Interval, linearPart } from './interval.js';
import type { Network, Op } from './layers.js';
import {
  activationLines,
  type Lines,
  type MaxPoolLines,
  maxPoolLines,
  scatterWindows,
  windowCounts,
} from './relaxations.js';

export const isNonlinear = (op: Op) => op.kind === 'activation' || op.kind === 'maxPool';

/** Relaxation of op k, computed once per chunk from its input bounds. */
type Relaxation = Lines | MaxPoolLines;

export interface State {
  net: Network;
  box: Interval;
  /** Bounds entering each nonlinear op. */
  pre: Interval[];
  relax: Relaxation[];
}

/** Σ over everything after the first two axes: `[B, R, ...]` → `[B, R]`. */
function sumRest(t: tf.Tensor): tf.Tensor {
  return tf.sum(tf.reshape(t, [t.shape[0], t.shape[1] as number, -1]), 2);
}

function dilatedKernel(op: Extract<Op, { kind: 'conv2d' }>): tf.Tensor4D {
  const [dh, dw] = op.dilations;
  if (dh === 1 && dw === 1) return op.kernel;
  const [kh, kw, ci, co] = op.kernel.shape;
  const spread = tf.pad(tf.reshape(op.kernel, [kh, 1, kw, 1, ci, co]), [
    [0, 0],
    [0, dh - 1],
    [0, 0],
    [0, dw - 1],
    [0, 0],
    [0, 0],
  ]);
  const full = tf.reshape(spread, [kh * dh, kw * dw, ci, co]);
  return tf.slice(
    full,
    [0, 0, 0, 0],
    [(kh - 1) * dh + 1, (kw - 1) * dw + 1, ci, co],
  ) as tf.Tensor4D;
}

/** Λ ↦ Λ·A for the linear part A of an affine op; Λ `[B, R, ...out]` → `[B, R, ...in]`. */
function linearBack(op: Op, lam: tf.Tensor, inShape: number[]): tf.Tensor {
  const [b, r] = lam.shape as number[];
  switch (op.kind) {
    case 'dense': {
      const [inDim, outDim] = op.kernel.shape;
      const y = tf.matMul(tf.reshape(lam, [-1, outDim]), op.kernel, false, true);
      return tf.reshape(y, [b, r, ...inShape.slice(0, -1), inDim]);
    }
    case 'conv2d': {
      const shape = [b * r, ...inShape] as [number, number, number, number];
      const outShape = [b * r, ...lam.shape.slice(2)] as [number, number, number, number];
      const flat = tf.reshape(lam, outShape) as tf.Tensor4D;
      const back = tf.conv2dTranspose(flat, dilatedKernel(op), shape, op.strides, op.padding);
      return tf.reshape(back, [b, r, ...inShape]);
    }
    default:
      return linearPart(op, lam);
  }
}

/** Λ·f ≥ Λ⁺·(aL·x + bL) + Λ⁻·(aU·x + bU): the new Λ and the constant added. */
function activationBack(lines: Lines, lam: tf.Tensor): [tf.Tensor, tf.Tensor] {
  const at = (t: tf.Tensor) => tf.expandDims(t, 1);
  const pos = tf.relu(lam);
  const neg = tf.sub(lam, pos);
  const constant = sumRest(tf.add(tf.mul(pos, at(lines.bL)), tf.mul(neg, at(lines.bU))));
  return [tf.add(tf.mul(pos, at(lines.aL)), tf.mul(neg, at(lines.aU))), constant];
}

function maxPoolBack(
  op: Extract<Op, { kind: 'maxPool' }>,
  lines: MaxPoolLines,
  lam: tf.Tensor,
  inShape: number[],
): [tf.Tensor, tf.Tensor] {
  const [b, r, ho, wo, c] = lam.shape;
  // Masks as 0/1 floats: products broadcast over the rows, a broadcast `where` would tile.
  const dominant = tf.expandDims(tf.cast(lines.dominant, 'float32'), 1);
  const pos = tf.relu(lam);
  const neg = tf.sub(lam, pos);
  const coef = tf.add(pos, tf.mul(neg, dominant));
  const looseUpper = tf.mul(tf.expandDims(lines.upper, 1), tf.sub(1, dominant));
  const constant = sumRest(tf.mul(neg, looseUpper));
  const v = tf.mul(tf.expandDims(coef, 5), tf.expandDims(lines.pick, 1));
  const p = lines.pick.shape[4];
  const flat = tf.reshape(v, [b * r, ho, wo, c, p]) as tf.Tensor5D;
  const back = scatterWindows(flat, inShape[0], inShape[1], op);
  return [tf.reshape(back, [b, r, ...inShape]), constant];
}

function avgPoolBack(
  op: Extract<Op, { kind: 'avgPool' }>,
  lam: tf.Tensor,
  inShape: number[],
): tf.Tensor {
  const [b, r, ho, wo, c] = lam.shape;
  const p = op.poolSize[0] * op.poolSize[1];
  const perWindow = tf.div(
    tf.reshape(lam, [b * r, ho, wo, c]),
    windowCounts(inShape[0], inShape[1], op),
  );
  const v = tf.broadcastTo(tf.expandDims(perWindow, 4), [b * r, ho, wo, c, p]) as tf.Tensor5D;
  return tf.reshape(scatterWindows(v, inShape[0], inShape[1], op), [b, r, ...inShape]);
}

function relaxationOf(s: State, k: number): Relaxation {
  if (s.relax[k] == null) {
    const op = s.net.ops[k];
    const { lower, upper } = s.pre[k];
    s.relax[k] =
      op.kind === 'maxPool'
        ? maxPoolLines(lower as tf.Tensor4D, upper as tf.Tensor4D, op)
        : activationLines(
            (op as Extract<Op, { kind: 'activation' }>).fn,
            (op as Extract<Op, { kind: 'activation' }>).alpha,
            lower,
            upper,
          );
  }
  return s.relax[k];
}

/**
 * Lower bounds `[B, R]` of Λ·(output of op `last`) over the input box, for Λ
 * `[B, R, ...shapes[last + 1]]`. Needs `s.pre` for every nonlinear op up to `last`.
 */
export function backSubstitute(s: State, last: number, spec: tf.Tensor): tf.Tensor2D {
  const { ops, shapes } = s.net;
  let lam = spec;
  let acc: tf.Tensor = tf.zeros(spec.shape.slice(0, 2));
  for (let k = last; k >= 0; k--) {
    const op = ops[k];
    const inShape = shapes[k];
    const bias = biasOf(op);
    if (bias != null) acc = tf.add(acc, sumRest(tf.mul(lam, bias)));
    let constant: tf.Tensor | undefined;
    switch (op.kind) {
      case 'activation':
        [lam, constant] = activationBack(relaxationOf(s, k) as Lines, lam);
        break;
      case 'maxPool':
        [lam, constant] = maxPoolBack(op, relaxationOf(s, k) as MaxPoolLines, lam, inShape);
        break;
      case 'avgPool':
        lam = avgPoolBack(op, lam, inShape);
        break;
      case 'globalAvgPool': {
        const [h, w] = inShape;
        const spread = tf.expandDims(tf.expandDims(tf.div(lam, h * w), 2), 2);
        lam = tf.broadcastTo(spread, [lam.shape[0], lam.shape[1] as number, ...inShape]);
        break;
      }
      case 'reshape':
        lam = tf.reshape(lam, [lam.shape[0], lam.shape[1] as number, ...inShape]);
        break;
      case 'transpose': {
        const inverse: number[] = [];
        op.perm.forEach((j, i) => {
          inverse[j] = i;
        });
        lam = tf.transpose(lam, [0, 1, ...inverse.map((j) => j + 2)]);
        break;
      }
      case 'residual':
        throw new Error('backSubstitute: residual ops are refused before CROWN starts');
      default:
        lam = linearBack(op, lam, inShape);
    }
    if (constant != null) acc = tf.add(acc, constant);
  }
  const c = tf.expandDims(tf.mul(tf.add(s.box.lower, s.box.upper), 0.5), 1);
  const r = tf.expandDims(tf.mul(tf.sub(s.box.upper, s.box.lower), 0.5), 1);
  return tf.sub(
    tf.add(acc, sumRest(tf.mul(lam, c))),
    sumRest(tf.mul(tf.abs(lam), r)),
  ) as tf.Tensor2D;
}
