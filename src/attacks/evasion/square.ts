/**
 * Square Attack (Andriushchenko, Croce, Flammarion & Hein, ECCV 2020): random search over square
 * windows. Each iteration proposes, per example, a change inside square windows and keeps it only
 * if the margin loss L = p_y − max_{j≠y} p_j on probabilities decreased (targeted:
 * L = max_{j≠t} p_j − p_t). An example stops once L < 0. The window covers a fraction p of the
 * pixels, following the paper's piece-wise constant schedule scaled to the query budget.
 * - L∞ (Algorithms 1 + 2): start from vertical stripes x ± eps (one sign per column and channel);
 *   a window of side round(√(p·h·w)) becomes clip(x ± eps), one random sign per channel.
 * - L2 (Algorithm 3, `square-l2.ts`): start from a grid of pseudo-Gaussian blocks scaled to eps;
 *   an update moves the perturbation mass of a second window into the first, then rescales.
 *
 * Threat model: score-based black box (only `QueryClassifier.predict`, never gradients), L∞ or L2
 * ball of radius `eps`, untargeted or targeted. Shapes: x [batch, h, w, c] in model.bounds; labels
 * [batch] int32. Queries: the first (on the initial points) costs 1 per example; afterwards only examples
 * not yet broken are queried, one query each per iteration, never more than `maxQueries` in all.
 * Randomness only from the seeded `Rng`. Caller owns `result.xAdv`.
 *
 * Perturbations are built on the CPU: every query already reads the scores back (the black-box
 * boundary), and a per-example window is scalar work, not a tensor op.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { QueryClassifier } from '../../models/classifier.js';
import type { AttackResult, AttackRunOptions } from '../result.js';
import { evasionAttack } from './factory.js';
import { parseWith } from './objective.js';
import { enforceThreatModel, perturbationNorms } from './projection.js';
import { type Geometry, squareL2Init, squareL2Propose, squareL2Side } from './square-l2.js';

export { type CountingQueryClassifier, queryClassifierFrom } from './black-box.js';
export type { Geometry } from './square-l2.js';

export const squareConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2']).default('linf'),
    /** Budget per example, the initial query included. */
    maxQueries: z.number().int().min(1).default(5000),
    /** Initial fraction of pixels a window covers; default by norm (paper: 0.05 L∞, 0.1 L2). */
    pInit: z.number().gt(0).max(1).optional(),
    targeted: z.boolean().default(false),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type SquareConfigInput = z.input<typeof squareConfigSchema>;
/** A parsed config; `pInit` is resolved from the norm when not given. */
export type SquareConfig = z.infer<typeof squareConfigSchema> & { pInit: number };

/** The standard initial window fractions of the paper and its reference code: 0.05 L∞, 0.1 L2. */
const DEFAULT_P_INIT = { linf: 0.05, l2: 0.1 } as const;

/** `onProgress` hears the queries spent per unbroken example, out of `maxQueries`. */
export type SquareOptions = AttackRunOptions;

/**
 * Square's result: `success` is margin < 0 at xAdv (misclassified, or predicted as the target)
 * and `predictions` the argmax of the scores it was judged on (no query beyond the budget);
 * `queries` is the mean per example.
 */
export interface SquareResult extends AttackResult {
  /** Queries spent on each example. */
  queriesPerExample: Int32Array;
  config: SquareConfig;
}

/**
 * The paper's schedule (reference implementation's `p_selection`): p_init halved after
 * 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of 10 000 iterations, rescaled to `maxQueries`.
 */
export function squareP(pInit: number, iteration: number, maxQueries: number): number {
  const it = Math.floor((iteration / maxQueries) * 10000);
  const edges = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000, 10000];
  if (it <= edges[0] || it > edges[edges.length - 1]) return pInit;
  const k = edges.findIndex((e) => it <= e);
  return pInit / 2 ** k;
}

/** The config with its defaults, pInit from the norm when not given. */
export function parseSquareConfig(config: unknown): SquareConfig {
  const parsed = parseWith('square', squareConfigSchema, config);
  return { ...parsed, pInit: parsed.pInit ?? DEFAULT_P_INIT[parsed.norm] };
}

/** `createSquare` validates a config once (the attack it returns does not re-check it); `square`: validates `config`, runs the Square Attack and re-clips the result to the eps-ball and bounds. */
export const { create: createSquare, call: square } = evasionAttack(
  (config: SquareConfigInput) => parseSquareConfig(config),
  runSquare,
);

async function runSquare(
  model: QueryClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: SquareConfig,
  opts: SquareOptions,
): Promise<SquareResult> {
  const shape = model.inputShape;
  check(
    shape.length === 3,
    () => `square: needs images [h, w, c], got inputShape [${shape}]`,
    'UNSUPPORTED',
  );
  check(
    x.rank === 4 && tf.util.arraysEqual(x.shape.slice(1), shape),
    () => `square: x must have shape [batch, ${shape}], got [${x.shape}]`,
  );
  const n = x.shape[0];
  check(
    labels.rank === 1 && labels.shape[0] === n,
    () => `square: labels must have shape [${n}], got [${labels.shape}]`,
  );
  const goalT = c.targeted ? opts.targetLabels : labels;
  check(goalT != null, () => 'square: targeted needs targetLabels', 'BAD_OPTION');
  check(
    goalT.rank === 1 && goalT.shape[0] === n,
    () => `square: targetLabels must have shape [${n}], got [${goalT.shape}]`,
  );
  const [h, w, ch] = shape;
  const g: Geometry = { h, w, ch, d: h * w * ch, bounds: model.bounds };
  const xs = (await x.data()) as Float32Array;
  const goal = Array.from(await goalT.data());
  const rng = new Rng(c.seed);

  const ops = c.norm === 'l2' ? L2 : LINF;
  const xBest = ops.init(xs, n, g, c.eps, rng);
  const { loss, top: pred } = await marginLoss(model, xBest, range(n), goal, c.targeted, x.shape);
  const queries = new Int32Array(n).fill(1);

  // At eps = 0 no proposal can move a point, so the initial query is the whole attack.
  for (let i = 0; c.eps > 0 && i < c.maxQueries - 1; i++) {
    opts.signal?.throwIfAborted();
    const active = range(n).filter((k) => loss[k] >= 0);
    if (active.length === 0) break;
    const s = ops.side(squareP(c.pInit, i, c.maxQueries), g);
    const xNew = ops.propose(xs, xBest, active, g, s, c.eps, rng);
    const proposed = await marginLoss(model, xNew, active, goal, c.targeted, [
      active.length,
      ...shape,
    ]);
    active.forEach((k, j) => {
      queries[k]++;
      if (proposed.loss[j] < loss[k]) {
        loss[k] = proposed.loss[j];
        pred[k] = proposed.top[j];
        xBest.set(xNew.subarray(j * g.d, (j + 1) * g.d), k * g.d);
      }
    });
    opts.onProgress?.(i + 2, c.maxQueries);
    if (opts.signal) await new Promise((resolve) => setTimeout(resolve, 0));
  }

  const xAdv = tf.tidy(() =>
    enforceThreatModel(tf.tensor(xBest, x.shape), x, c.eps, c.norm, model.bounds),
  );
  const meanQueries = queries.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  return {
    xAdv,
    predictions: tf.tensor1d(pred, 'int32'),
    success: tf.tensor1d(Array.from(loss, (l) => l < 0)) as tf.Tensor1D,
    perturbationNorms: perturbationNorms(xAdv, x, c.norm),
    gradientEvaluations: 0,
    queries: meanQueries,
    queriesPerExample: queries,
    seed: c.seed,
    config: c,
  };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

const clip = (v: number, b: readonly [number, number]) => Math.min(b[1], Math.max(b[0], v));

/** What differs between the norms: the initial points, the window side and the proposal. */
interface SquareNormOps {
  init(xs: Float32Array, n: number, g: Geometry, eps: number, rng: Rng): Float32Array;
  side(p: number, g: Geometry): number;
  /** Proposals `[active, d]`, one per active example, each a full point. */
  propose(
    xs: Float32Array,
    xBest: Float32Array,
    active: number[],
    g: Geometry,
    s: number,
    eps: number,
    rng: Rng,
  ): Float32Array;
}

const LINF: SquareNormOps = {
  init: stripes,
  side: (p, g) =>
    Math.min(
      Math.max(Math.round(Math.sqrt(p * g.h * g.w)), 1),
      Math.max(1, Math.min(g.h, g.w) - 1),
    ),
  propose,
};

const L2: SquareNormOps = { init: squareL2Init, side: squareL2Side, propose: squareL2Propose };

/** Vertical stripes: one random sign per (column, channel), shared by all rows (paper, Sec. 3.1). */
function stripes(xs: Float32Array, n: number, g: Geometry, eps: number, rng: Rng): Float32Array {
  const out = new Float32Array(n * g.d);
  for (let k = 0; k < n; k++) {
    for (let col = 0; col < g.w; col++) {
      for (let c = 0; c < g.ch; c++) {
        const delta = rng.next() < 0.5 ? -eps : eps;
        for (let r = 0; r < g.h; r++) {
          const at = k * g.d + (r * g.w + col) * g.ch + c;
          out[at] = clip(xs[at] + delta, g.bounds);
        }
      }
    }
  }
  return out;
}

/**
 * One proposal per active example: copy its best point, then set a random s×s window to
 * clip(x ± eps) with one sign per channel, redrawn (as the reference does) while the window would
 * not change. Returns the batch of proposals `[active, d]`.
 */
function propose(
  xs: Float32Array,
  xBest: Float32Array,
  active: number[],
  g: Geometry,
  s: number,
  eps: number,
  rng: Rng,
): Float32Array {
  const xNew = new Float32Array(active.length * g.d);
  const signs = new Float64Array(g.ch);
  active.forEach((k, j) => {
    xNew.set(xBest.subarray(k * g.d, (k + 1) * g.d), j * g.d);
    const r0 = rng.int(g.h - s + 1);
    const c0 = rng.int(g.w - s + 1);
    // 2^ch sign patterns; a bounded number of redraws keeps eps tiny against the bounds finite.
    for (let attempt = 0; attempt < 100; attempt++) {
      for (let c = 0; c < g.ch; c++) signs[c] = rng.next() < 0.5 ? -eps : eps;
      let changed = false;
      for (let r = r0; r < r0 + s; r++) {
        for (let col = c0; col < c0 + s; col++) {
          for (let c = 0; c < g.ch; c++) {
            const off = (r * g.w + col) * g.ch + c;
            const v = Math.fround(clip(xs[k * g.d + off] + signs[c], g.bounds));
            if (v !== xBest[k * g.d + off]) changed = true;
            xNew[j * g.d + off] = v;
          }
        }
      }
      if (changed) break;
    }
  });
  return xNew;
}

/**
 * Queries `model` on `rows` (values of the examples `which`) and returns the margin loss per row:
 * p_y − max_{j≠y} p_j (untargeted) or max_{j≠t} p_j − p_t (targeted). Negative means success.
 * `top`: each row's top class (the first of equal scores, as argMax).
 */
async function marginLoss(
  model: QueryClassifier,
  rows: Float32Array,
  which: number[],
  goal: number[],
  targeted: boolean,
  shape: number[],
): Promise<{ loss: Float64Array; top: Int32Array }> {
  const input = tf.tensor(rows, shape);
  let probs: tf.Tensor2D | undefined;
  let p: Float32Array;
  try {
    probs = await model.predict(input);
    p = (await probs.data()) as Float32Array;
  } finally {
    tf.dispose([input, probs as tf.Tensor]);
  }
  const k = model.numClasses;
  const loss = new Float64Array(which.length);
  const top = new Int32Array(which.length);
  which.forEach((ex, j) => {
    const y = goal[ex];
    let other = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) {
      if (c !== y) other = Math.max(other, p[j * k + c]);
      if (p[j * k + c] > p[j * k + top[j]]) top[j] = c;
    }
    const m = p[j * k + y] - other;
    loss[j] = targeted ? -m : m;
  });
  return { loss, top };
}
