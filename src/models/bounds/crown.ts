/**
 * CROWN (Zhang et al., "Efficient Neural Network Robustness Certification with General Activation
 * Functions", NeurIPS 2018): backward linear relaxation. A specification Λ (rows of coefficients
 * on the logits: ±e_j for logit bounds, e_y − e_j for margins) is back-substituted through the
 * network to the input: affine ops transpose exactly (Dense by Wᵀ, Conv2D by conv2dTranspose),
 * each nonlinearity is replaced by the line below or above it (chosen by the sign of each
 * coefficient), and the resulting linear function of x is minimised over the input box
 * [lo, hi]: Λ·c − |Λ|·r + constant, with c, r the box's centre and radius after clipping.
 *
 * Intermediate bounds. The relaxations need pre-activation bounds for every nonlinearity. With
 * `intermediate: 'crown'` (default) they come from CROWN itself (identity specification on that
 * layer, back-substituted the same way) for layers of at most `maxIntermediateNeurons` neurons,
 * intersected with IBP's; wider layers (the conv layers of cnn-small: 21,632 and 36,864 neurons)
 * keep IBP bounds. With `intermediate: 'ibp'` every intermediate bound is IBP's and CROWN runs on
 * the final specification only: that is CROWN-IBP (Zhang et al. 2020), not CROWN.
 *
 * Back-substitution rules per op: backward.ts. Relaxations (relaxations.ts): ReLU as in the paper (chord above, adaptive slope 0/1 below);
 * convex/concave pieces of smooth activations by chord and tangent; max pooling by the window's
 * element with the largest lower bound below and the window's largest upper bound above.
 *
 * Reported bounds are the intersection of CROWN's and IBP's, so never looser than IBP.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { parseWith } from '../../options.js';
import type { TfjsClassifier } from '../tfjs-classifier.js';
import { backSubstitute, isNonlinear, type State } from './backward.js';
import {
  type CertifyBoundsResult,
  checkArgs,
  type Interval,
  ibpMargins,
  inputBox,
  intervalStep,
  type LogitBounds,
  type MarginBounds,
  marginSpec,
  propagate,
  readCertificates,
} from './interval.js';
import { buildNetwork, describe, type Network, sizeOf, unsupported } from './layers.js';

export const crownConfigSchema = z
  .object({
    /** Where hidden-layer bounds come from: 'crown' (see above) or 'ibp' (CROWN-IBP). */
    intermediate: z.enum(['crown', 'ibp']).default('crown'),
    /** Wider pre-activation layers keep IBP bounds (cost grows with neurons × network size). */
    maxIntermediateNeurons: z.number().int().min(0).default(1024),
    /** Floats a back-substitution may hold at once; examples are processed in chunks to fit. */
    memoryBudget: z
      .number()
      .int()
      .min(1)
      .default(2 ** 25),
  })
  .strict();
export type CrownConfig = z.infer<typeof crownConfigSchema>;
export type CrownConfigInput = z.input<typeof crownConfigSchema>;

/**
 * Whether CROWN should bound the input of nonlinear op k: it follows a linear op, is narrow
 * enough, and IBP is not already exact there (IBP is exact when no nonlinearity and at most one
 * op mixing elements, Dense, Conv2D or pooling, precede it: one affine map of a box).
 */
function crownIntermediate(net: Network, k: number, cfg: CrownConfig): boolean {
  if (cfg.intermediate !== 'crown' || k === 0 || isNonlinear(net.ops[k - 1])) return false;
  if (sizeOf(net.shapes[k]) > cfg.maxIntermediateNeurons) return false;
  const before = net.ops.slice(0, k);
  const reorders = new Set(['scale', 'reshape', 'transpose']);
  const mixing = before.filter((op) => !reorders.has(op.kind)).length;
  return before.some(isNonlinear) || mixing > 1;
}

/** [I; −I] over the n neurons of shape `shape`, for B examples: `[B, 2n, ...shape]`. */
function identitySpec(b: number, shape: number[]): tf.Tensor {
  const n = sizeOf(shape);
  const eye = tf.eye(n);
  const both = tf.reshape(tf.concat([eye, tf.neg(eye)], 0), [1, 2 * n, ...shape]);
  return tf.broadcastTo(both, [b, 2 * n, ...shape]);
}

/**
 * CROWN lower bounds of spec `[B, R, numClasses]` applied to the logits, for the box `box`
 * (inside `tf.tidy`). Also returns the logit box of the forward pass, whose interval steps start
 * from the tightened intermediate bounds, and the rows back-substituted per example.
 */
export function crownLower(
  net: Network,
  box: Interval,
  spec: tf.Tensor,
  cfg: CrownConfig,
): { lower: tf.Tensor2D; logits: Interval; rows: number } {
  const s: State = { net, box, pre: [], relax: [] };
  const b = box.lower.shape[0];
  let cur = box;
  let rows = 0;
  for (let k = 0; k < net.ops.length; k++) {
    const op = net.ops[k];
    if (isNonlinear(op)) {
      if (crownIntermediate(net, k, cfg)) {
        const n = sizeOf(net.shapes[k]);
        const res = backSubstitute(s, k - 1, identitySpec(b, net.shapes[k]));
        const shape = [b, ...net.shapes[k]];
        const lower = tf.reshape(tf.slice(res, [0, 0], [b, n]), shape);
        const upper = tf.reshape(tf.neg(tf.slice(res, [0, n], [b, n])), shape);
        cur = { lower: tf.maximum(cur.lower, lower), upper: tf.minimum(cur.upper, upper) };
        rows += 2 * n;
      }
      s.pre[k] = cur;
    }
    cur = intervalStep(op, cur, net.shapes[k + 1]);
  }
  rows += spec.shape[1] as number;
  return { lower: backSubstitute(s, net.ops.length - 1, spec), logits: cur, rows };
}

/** Examples per chunk so that a back-substitution of the widest row set fits the budget. */
function chunkSize(net: Network, rowsFinal: number, cfg: CrownConfig, batch: number): number {
  let rows = rowsFinal;
  let widest = 1;
  net.ops.forEach((op, k) => {
    if (isNonlinear(op) && crownIntermediate(net, k, cfg)) {
      rows = Math.max(rows, 2 * sizeOf(net.shapes[k]));
    }
    const window =
      op.kind === 'maxPool' || op.kind === 'avgPool' ? op.poolSize[0] * op.poolSize[1] : 1;
    widest = Math.max(widest, sizeOf(net.shapes[k]), sizeOf(net.shapes[k + 1]) * window);
  });
  return Math.max(1, Math.min(batch, Math.floor(cfg.memoryBudget / (4 * rows * widest))));
}

/** Rows ±e_j (logit bounds) and, with labels, e_y − e_j (margins): `[B, 2K or 3K, K]`. */
export function logitSpec(b: number, k: number, labels?: tf.Tensor1D): tf.Tensor {
  const eye = tf.expandDims(tf.eye(k), 0);
  const parts = [tf.broadcastTo(eye, [b, k, k]), tf.broadcastTo(tf.neg(eye), [b, k, k])];
  if (labels != null) {
    parts.push(marginSpec(labels, k));
  }
  return tf.concat(parts, 1);
}

/** One chunk: CROWN ∩ IBP bounds (inside `tf.tidy`). */
function crownChunk(
  model: TfjsClassifier,
  x: tf.Tensor,
  eps: number,
  labels: tf.Tensor1D | undefined,
  cfg: CrownConfig,
  fn: string,
): { bounds: tf.Tensor2D[]; rows: number } {
  const net = buildNetwork(model, fn);
  const box = inputBox(x, eps, model.bounds);
  const [b, k] = [x.shape[0], model.numClasses];
  const out = crownLower(net, box, logitSpec(b, k, labels), cfg);
  const part = (i: number) => tf.slice(out.lower, [0, i * k], [b, k]);
  const ibp = labels != null ? ibpMargins(net, box, labels) : propagate(net, box);
  const lower = tf.maximum(tf.maximum(part(0), out.logits.lower), ibp.lower) as tf.Tensor2D;
  const upper = tf.minimum(tf.minimum(tf.neg(part(1)), out.logits.upper), ibp.upper) as tf.Tensor2D;
  if (labels == null) return { bounds: [lower, upper], rows: out.rows };
  const own = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), k), 'bool');
  const ibpMargin = (ibp as MarginBounds).marginLower;
  const margin = tf.where(own, tf.zerosLike(lower), tf.maximum(part(2), ibpMargin));
  return { bounds: [lower, upper, margin as tf.Tensor2D], rows: out.rows };
}

/** Runs `crownChunk` over chunks of x and concatenates. Returns bounds and passes. */
function crownAll(
  model: TfjsClassifier,
  x: tf.Tensor,
  eps: number,
  labels: tf.Tensor1D | undefined,
  config: CrownConfigInput | undefined,
  fn: string,
): { bounds: tf.Tensor2D[]; passes: number } {
  checkArgs(fn, model, x, eps, labels);
  const cfg = parseWith(fn, crownConfigSchema, config);
  const batch = x.shape[0];
  const rowsFinal = (labels != null ? 3 : 2) * model.numClasses;
  const size = tf.tidy(() => {
    const net = buildNetwork(model, fn);
    const join = net.ops.find((op) => op.kind === 'residual');
    if (join != null) {
      throw unsupported(
        fn,
        `${describe(join.source)} joins two branches (a residual block): CROWN here back-substitutes straight chains only; IBP bounds this model`,
      );
    }
    return chunkSize(net, rowsFinal, cfg, batch);
  });
  const pieces: tf.Tensor2D[][] = [];
  let passes = 0;
  try {
    for (let start = 0; start < batch; start += size) {
      const n = Math.min(size, batch - start);
      const piece = tf.tidy(() => {
        const xs = tf.slice(x, start, n);
        const ys = labels != null ? tf.slice(labels, start, n) : undefined;
        const out = crownChunk(model, xs, eps, ys, cfg, fn);
        // Rows back-substituted, plus the interval pass inside CROWN and the plain IBP pass.
        passes += n * (out.rows + 4);
        return out.bounds;
      });
      pieces.push(piece);
    }
    const joined = pieces[0].map((_, i) =>
      pieces.length === 1 ? pieces[0][i] : (tf.concat(pieces.map((p) => p[i])) as tf.Tensor2D),
    );
    if (pieces.length > 1) tf.dispose(pieces.flat());
    return { bounds: joined, passes };
  } catch (e) {
    tf.dispose(pieces.flat());
    throw e;
  }
}

/**
 * CROWN bounds on the logits of every example of x `[batch, ...inputShape]` over its L∞ ball of
 * radius eps clipped to `model.bounds`, intersected with IBP's. Caller owns the tensors.
 */
export function crownBounds(
  model: TfjsClassifier,
  x: tf.Tensor,
  eps: number,
  config?: CrownConfigInput,
): LogitBounds {
  const { bounds } = crownAll(model, x, eps, undefined, config, 'crownBounds');
  return { lower: bounds[0], upper: bounds[1] };
}

/** `crownBounds` plus margin lower bounds for `labels` (never below IBP's margin bounds). */
export function crownMarginBounds(
  model: TfjsClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  eps: number,
  config?: CrownConfigInput,
): MarginBounds {
  const { bounds } = crownAll(model, x, eps, labels, config, 'crownMarginBounds');
  return { lower: bounds[0], upper: bounds[1], marginLower: bounds[2] };
}

/**
 * CROWN certificates (see `certifyIbp`). `passes` counts, per example, every row
 * back-substituted (each through part of the network at most once: an upper estimate) plus
 * two interval passes for CROWN's forward sweep and two for the IBP bounds it is intersected with.
 */
export async function certifyCrown(
  model: TfjsClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  eps: number,
  config?: CrownConfigInput,
): Promise<CertifyBoundsResult> {
  const { bounds, passes } = crownAll(model, x, eps, labels, config, 'certifyCrown');
  const [lower, upper, marginLower] = bounds;
  const read = await readCertificates(marginLower, labels);
  return { lower, upper, marginLower, ...read, passes };
}
