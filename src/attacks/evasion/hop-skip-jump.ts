/**
 * HopSkipJumpAttack (Chen, Jordan & Wainwright, IEEE S&P 2020), L2 and L∞, untargeted or
 * targeted, following the authors' implementation (Jianbo-Lab/HSJA, `hsja.py`).
 *
 * Threat model: decision-based black box. Only the top-1 label of `QueryClassifier.predict` is
 * read (its argmax; scores, if any, are ignored), never gradients. Minimum-norm: no eps budget;
 * the result is the adversarial point closest to x (in `norm`) among all the points the attack
 * had classified as adversarial. An optional `eps` stops an example once it is within eps, and
 * then also caps the result: an example not brought within eps is projected onto the eps-ball
 * and reported unsuccessful.
 *
 * Per example: query x itself (already adversarial: done, distance 0); find a starting point
 * (`startingPoints`, then — targeted only — the batch's examples labelled with the target, then
 * up to `initTrials` uniform noise images, each verified by one query); bisect the blend
 * (1 − α)x + α·start to within 0.001; bisect to the boundary (threshold θ = γ/d^{3/2} for L2,
 * γ/d² for L∞). Then, for t = 1 … steps: δ_t = 0.1·(bounds range) at t = 1, else d·θ·dist_post;
 * estimate the gradient direction at the boundary from n_t = min(initEvals·√t, maxEvals) random
 * unit directions (Gaussian for L2, uniform for L∞) with baseline subtraction; step along it
 * (L∞: its sign) from ξ = dist/√t, halving ξ until the point is adversarial (geometric
 * progression); bisect back to the boundary.
 *
 * Queries: every model query counts, per example, never more than `maxQueries`; an iteration
 * shrinks its gradient sample to what the budget leaves after its step and bisection, and stops
 * when not even one sample fits. Examples are batched into shared model calls. Randomness only
 * from the seeded `Rng` (one fork per example). Shapes: x [batch, ...inputShape] in
 * model.bounds; labels [batch] int32 (true labels). Caller owns `result.xAdv`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { QueryClassifier } from '../../models/classifier.js';
import { type DecisionSearch, type RoundSize, runDecisionSearches } from './decision-search.js';
import { evasionAttack } from './factory.js';
import {
  ask,
  bisections,
  distance,
  estimateGradient,
  geometricStep,
  type HsjSearch,
  scout,
  toBoundary,
} from './hop-skip-jump-steps.js';
import { parseWith } from './objective.js';
import { clipToBounds, enforceThreatModel } from './projection.js';

export const hopSkipJumpConfigSchema = z
  .object({
    norm: z.enum(['l2', 'linf']).default('l2'),
    /** Budget per example, every query included. */
    maxQueries: z.number().int().min(1).default(10000),
    /** Iterations (the reference's num_iterations). */
    steps: z.number().int().min(0).default(40),
    /** Gradient samples at iteration t: min(initEvals·√t, maxEvals). */
    initEvals: z.number().int().min(1).default(100),
    maxEvals: z.number().int().min(1).default(10000),
    /** Sets the bisection threshold θ = γ/d^{3/2} (L2) or γ/d² (L∞). */
    gamma: z.number().gt(0).default(1),
    /** Uniform noise images tried as starting points. */
    initTrials: z.number().int().min(1).default(100),
    targeted: z.boolean().default(false),
    /** Optional: stop an example within this distance, and cap results to this ball. */
    eps: z.number().min(0).optional(),
    /** Rows per `predict` call. */
    batchSize: z.number().int().min(1).default(256),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type HopSkipJumpConfig = z.infer<typeof hopSkipJumpConfigSchema>;
export type HopSkipJumpConfigInput = z.input<typeof hopSkipJumpConfigSchema>;

export interface HopSkipJumpOptions {
  /** Required when `targeted`: the classes to reach, `[batch]`. */
  targetLabels?: tf.Tensor1D;
  /** Optional adversarial starting points `[batch, ...inputShape]` (verified by one query each). */
  startingPoints?: tf.Tensor;
  /** Called after every round of queries with the most queries any example has spent. */
  onProgress?: (queries: number, maxQueries: number) => void;
  /** Checked before every round; aborting rejects with `signal.reason`. */
  signal?: AbortSignal;
}

export interface HopSkipJumpResult {
  xAdv: tf.Tensor;
  /** Per example: xAdv was classified as adversarial (and, with `eps`, lies within it). */
  success: boolean[];
  /** ‖xAdv − x‖ per example in `norm` (float64). */
  perturbationNorms: Float64Array;
  queries: Int32Array;
  meanQueries: number;
  seed: number;
  config: HopSkipJumpConfig;
}

/** `createHopSkipJump` validates a config once (the attack it returns does not re-check it); `hopSkipJump`: validates `config` and runs HopSkipJump. */
export const { create: createHopSkipJump, call: hopSkipJump } = evasionAttack(
  (config: HopSkipJumpConfigInput) => parseWith('hsj', hopSkipJumpConfigSchema, config),
  runHopSkipJump,
);

function checkInputs(
  model: QueryClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: HopSkipJumpConfig,
  opts: HopSkipJumpOptions,
) {
  const shape = model.inputShape;
  const n = x.shape[0];
  check(
    x.rank === shape.length + 1 && tf.util.arraysEqual(x.shape.slice(1), shape),
    () => `hsj: x must have shape [batch, ${shape}], got [${x.shape}]`,
  );
  check(
    labels.rank === 1 && labels.shape[0] === n,
    () => `hsj: labels must have shape [${n}], got [${labels.shape}]`,
  );
  const t = opts.targetLabels;
  check(!c.targeted || t != null, () => 'hsj: targeted needs targetLabels', 'BAD_OPTION');
  check(
    t == null || (t.rank === 1 && t.shape[0] === n),
    () => `hsj: targetLabels must have shape [${n}], got [${t?.shape}]`,
  );
  const s = opts.startingPoints;
  check(
    s == null || tf.util.arraysEqual(s.shape, x.shape),
    () => `hsj: startingPoints must have shape [${x.shape}], got [${s?.shape}]`,
  );
}

async function runHopSkipJump(
  model: QueryClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: HopSkipJumpConfig,
  opts: HopSkipJumpOptions,
): Promise<HopSkipJumpResult> {
  checkInputs(model, x, labels, c, opts);
  const n = x.shape[0];
  const d = x.size / Math.max(n, 1);
  const xs = (await x.data()) as Float32Array;
  const ys = await labels.data();
  const goal = c.targeted ? await opts.targetLabels!.data() : ys;
  const given = opts.startingPoints ? ((await opts.startingPoints.data()) as Float32Array) : null;
  const rng = new Rng(c.seed);
  const roundSize: RoundSize = { rowsPerExample: 1 };
  const states: HsjSearch[] = [];
  const searches: DecisionSearch[] = [];
  for (let k = 0; k < n; k++) {
    const starts = given ? [given.slice(k * d, (k + 1) * d)] : [];
    // A targeted search may also start from an example of the batch labelled with its target.
    for (let j = 0; c.targeted && j < n; j++) {
      if (j !== k && ys[j] === goal[k]) starts.push(xs.slice(j * d, (j + 1) * d));
    }
    const s: HsjSearch = {
      x0: xs.subarray(k * d, (k + 1) * d),
      d,
      c,
      bounds: model.bounds,
      theta: c.norm === 'l2' ? c.gamma / (d * Math.sqrt(d)) : c.gamma / (d * d),
      rng: rng.fork(),
      spent: 0,
      best: null,
      bestDist: Number.POSITIVE_INFINITY,
      roundSize,
    };
    states.push(s);
    searches.push(search(s, c, starts));
  }
  const adversarial = (k: number, label: number) =>
    c.targeted ? label === goal[k] : label !== goal[k];
  const queries = await runDecisionSearches(model, searches, adversarial, {
    batchSize: c.batchSize,
    roundSize,
    signal: opts.signal,
    onRound: (q) => opts.onProgress?.(Math.max(...q), c.maxQueries),
  });
  return finish(x, xs, states, queries, c, model.bounds);
}

/** The per-example algorithm; every phase returns null when the budget (or eps) stops it. */
function* search(s: HsjSearch, c: HopSkipJumpConfig, starts: Float32Array[]): DecisionSearch {
  const self = yield* ask(s, s.x0, 1);
  if (self === null || self[0] === 1) return;
  const start = yield* scout(s, starts, true);
  if (start === null) return;
  const blended = yield* toBoundary(s, start, 'l2', 0.001);
  if (blended === null) return;
  let xb = yield* toBoundary(s, blended, c.norm);
  let distPost = 0;
  const range = s.bounds[1] - s.bounds[0];
  for (let t = 1; xb !== null && t <= c.steps; t++) {
    const delta =
      t === 1 ? 0.1 * range : (c.norm === 'l2' ? Math.sqrt(s.d) : s.d) * s.theta * distPost;
    // Leave enough budget for one step and the bisection after it.
    const reserve = 1 + bisections(s);
    const evals = Math.min(
      Math.floor(c.initEvals * Math.sqrt(t)),
      c.maxEvals,
      c.maxQueries - s.spent - reserve,
    );
    if (evals < 1) return;
    const grad = yield* estimateGradient(s, xb, evals, delta);
    if (grad === null) return;
    const update = c.norm === 'l2' ? grad : grad.map(Math.sign);
    const stepped = yield* geometricStep(s, xb, update, distance(s, xb) / Math.sqrt(t));
    if (stepped === null) return;
    distPost = distance(s, stepped);
    xb = yield* toBoundary(s, stepped, c.norm);
  }
}

/** Best points (x where none was found), eps cap, bounds; success and distances per example. */
async function finish(
  x: tf.Tensor,
  xs: Float32Array,
  states: HsjSearch[],
  queries: Int32Array,
  c: HopSkipJumpConfig,
  bounds: readonly [number, number],
): Promise<HopSkipJumpResult> {
  const n = states.length;
  const d = n > 0 ? states[0].d : 0;
  const rows = new Float32Array(xs.length);
  const success = states.map((s, k) => {
    rows.set(s.best ?? xs.subarray(k * d, (k + 1) * d), k * d);
    return s.best !== null && (c.eps === undefined || s.bestDist <= c.eps);
  });
  const xAdv = tf.tidy(() => {
    const found = tf.tensor(rows, x.shape);
    if (c.eps === undefined) return clipToBounds(found, bounds);
    // Successful examples are kept bit for bit; the others are projected into the eps-ball.
    const keep = tf.reshape(
      tf.tensor1d(
        success.map((v) => (v ? 1 : 0)),
        'bool',
      ),
      [n, ...new Array<number>(x.rank - 1).fill(1)],
    );
    const capped = enforceThreatModel(found, x, c.eps, c.norm, bounds);
    return tf.where(tf.broadcastTo(keep, x.shape), clipToBounds(found, bounds), capped);
  });
  const out = (await xAdv.data()) as Float32Array;
  const norms = Float64Array.from(states, (s, k) => distance(s, out.subarray(k * d, (k + 1) * d)));
  const meanQueries = queries.reduce((a, b) => a + b, 0) / Math.max(n, 1);
  return { xAdv, success, perturbationNorms: norms, queries, meanQueries, seed: c.seed, config: c };
}
