/**
 * MI-Face model inversion (Fredrikson, Jha & Ristenpart 2015, Algorithm 1): gradient descent on
 * the input for a class score, one reconstruction per class. For class c the cost is
 *
 *   J(x) = S_c(x) + tv · TV(x) + l2 · mean((x − m)²)
 *
 * with S_c = 1 − p_c(x) (the paper's cost, `score: 'probability'`) or −z_c(x) (the logit, whose
 * gradient does not vanish where the softmax saturates), TV the total variation (priors.ts) and
 * m the middle of the model's bounds. Each step is x ← clip(x − lr·∇J(x), bounds): the range
 * prior is the projection. A class stops when its cost has not fallen below the maximum of the
 * previous `window` costs (the paper's β), when it reaches `threshold` (γ), or after `steps`;
 * the reconstruction is the iterate of lowest cost, as in the paper.
 *
 * Threat model: white box; the attacker holds the model's logits and their input gradient (ART's
 * MIFace asks for class gradients likewise). ART's MIFace has no priors, and its loop keeps
 * descending exactly the rows whose cost meets the paper's stopping rule (its `active` mask is
 * that rule, not its negation); here a row stops when the rule holds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../../engine/rng.js';
import { check } from '../../../errors.js';
import type { Classifier } from '../../../models/classifier.js';
import { parseWith } from '../../../options.js';
import { l2Prior, totalVariation } from './priors.js';

export const miFaceSchema = z.strictObject({
  steps: z.number().int().min(1).default(500).describe('maximum gradient steps per class (α)'),
  lr: z.number().positive().default(0.1).describe('step size λ of the gradient descent'),
  score: z
    .enum(['probability', 'logit'])
    .default('probability')
    .describe("class score: 'probability' (cost 1 − p_c, as the paper) or 'logit' (cost −z_c)"),
  tv: z.number().min(0).default(0).describe('weight of the total-variation prior'),
  l2: z.number().min(0).default(0).describe('weight of the L2 prior towards mid-grey'),
  start: z
    .enum(['zeros', 'grey', 'uniform'])
    .default('zeros')
    .describe('starting image: zeros, grey (the middle of the bounds), or uniform noise'),
  window: z
    .number()
    .int()
    .min(1)
    .default(100)
    .describe('stop when the cost has not improved on the last N steps (β)'),
  threshold: z.number().optional().describe('stop once the cost is at most this (γ)'),
  seed: z.number().int().min(0).max(0xffffffff).default(0).describe('random seed'),
});
export type MiFaceConfig = z.output<typeof miFaceSchema>;
export type MiFaceOptions = z.input<typeof miFaceSchema>;

/** What the cost needs: the class score and the priors' weights. */
export type CostTerms = Pick<MiFaceConfig, 'score' | 'tv' | 'l2'>;

/**
 * J(x) per example `[batch]` for the classes `classes` (`[batch]` int32): the class score plus
 * the priors. Differentiable in x. Caller owns the result.
 */
export function inversionCost(
  model: Classifier,
  x: tf.Tensor,
  classes: tf.Tensor1D,
  c: CostTerms,
): tf.Tensor1D {
  return tf.tidy(() => {
    const logits = model.logits(x);
    const pick = tf.oneHot(tf.cast(classes, 'int32'), model.numClasses);
    const score =
      c.score === 'logit'
        ? tf.neg(tf.sum(tf.mul(logits, pick), 1))
        : tf.sub(1, tf.sum(tf.mul(tf.softmax(logits), pick), 1));
    let cost = score;
    if (c.tv > 0) cost = tf.add(cost, tf.mul(totalVariation(x), c.tv));
    if (c.l2 > 0) cost = tf.add(cost, tf.mul(l2Prior(x, mid(model.bounds)), c.l2));
    return cost as tf.Tensor1D;
  });
}

/**
 * J(x) `[batch]` and ∇ₓ Σ J(x) (x's shape) in one forward and backward pass; through the
 * classifier's `logits`, whose input gradient a native engine supplies when it has one.
 * Caller owns both.
 */
export function inversionGradient(
  model: Classifier,
  x: tf.Tensor,
  classes: tf.Tensor1D,
  c: CostTerms,
): { cost: tf.Tensor1D; grad: tf.Tensor } {
  let cost: tf.Tensor1D | undefined;
  const grad = tf.grad((z: tf.Tensor) => {
    const perExample = inversionCost(model, z, classes, c);
    cost = tf.keep(tf.clone(perExample));
    return tf.sum(perExample);
  })(x);
  return { cost: cost!, grad };
}

const mid = ([lo, hi]: readonly [number, number]) => (lo + hi) / 2;

/** Why a class stopped: its cost reached `threshold`, stopped improving, or ran out of steps. */
export type StopReason = 'threshold' | 'plateau' | 'steps';

export interface InversionResult {
  /** One reconstruction per class, `[classes, ...inputShape]`, in `classes` order. Caller owns it. */
  x: tf.Tensor;
  classes: number[];
  /** J at each reconstruction. */
  cost: number[];
  /** Gradient steps each class took. */
  steps: number[];
  stopped: StopReason[];
  config: MiFaceConfig;
}

export interface InversionRun {
  /** A starting image per class `[classes, ...inputShape]`, or one `[1, ...]` for all; replaces `start`. */
  start?: tf.Tensor;
  signal?: AbortSignal;
  /** Steps done so far, out of `steps`. */
  onProgress?: (done: number, total: number) => void;
}

/** The starting batch `[k, ...inputShape]`, inside the bounds. Caller owns it. */
function startingImages(model: Classifier, k: number, c: MiFaceConfig, given?: tf.Tensor) {
  const [lo, hi] = model.bounds;
  const shape = [k, ...model.inputShape];
  if (given !== undefined) {
    check(
      given.rank === shape.length &&
        (given.shape[0] === k || given.shape[0] === 1) &&
        tf.util.arraysEqual(given.shape.slice(1), model.inputShape),
      () => {
        const dims = model.inputShape.join(', ');
        return `miFace: start must have shape [${k}, ${dims}] or [1, ${dims}], got [${given.shape.join(', ')}]`;
      },
    );
    return tf.tidy(() => tf.clipByValue(tf.broadcastTo(given, shape), lo, hi));
  }
  if (c.start === 'uniform') {
    const rng = new Rng(c.seed);
    const size = shape.reduce((a, b) => a * b, 1);
    return tf.tensor(
      Float32Array.from({ length: size }, () => lo + (hi - lo) * rng.next()),
      shape,
    );
  }
  return tf.fill(shape, c.start === 'grey' ? mid(model.bounds) : Math.min(hi, Math.max(lo, 0)));
}

/**
 * Per class: the best cost so far, the last `window` costs, why it stopped and its steps taken.
 * `observe` applies the paper's stopping rule to the costs at step i and says which classes
 * improved on their best.
 */
class Stopping {
  readonly best: number[];
  readonly stopped: (StopReason | null)[];
  readonly taken: number[];
  private readonly history: number[][];

  constructor(
    n: number,
    private readonly c: MiFaceConfig,
  ) {
    this.best = new Array<number>(n).fill(Number.POSITIVE_INFINITY);
    this.stopped = new Array<StopReason | null>(n).fill(null);
    this.taken = new Array<number>(n).fill(0);
    this.history = Array.from({ length: n }, () => []);
  }

  observe(costs: number[], i: number): boolean[] {
    const improved = costs.map((v, r) => this.stopped[r] === null && v < this.best[r]);
    costs.forEach((v, r) => {
      if (this.stopped[r] !== null) return;
      if (improved[r]) this.best[r] = v;
      const past = this.history[r];
      if (this.c.threshold !== undefined && v <= this.c.threshold) this.stopped[r] = 'threshold';
      else if (past.length >= this.c.window && v >= Math.max(...past)) this.stopped[r] = 'plateau';
      else if (i === this.c.steps) this.stopped[r] = 'steps';
      else this.taken[r]++;
      past.push(v);
      if (past.length > this.c.window) past.shift();
    });
    return improved;
  }

  get moving(): boolean[] {
    return this.stopped.map((s) => s === null);
  }
}

/** `where(rows, a, b)` for a per-example boolean list `rows`. Caller owns the result. */
function selectRows(rows: boolean[], a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const mask = tf.tensor(
      rows.map(Number),
      [rows.length, ...a.shape.slice(1).map(() => 1)],
      'bool',
    );
    return tf.where(tf.broadcastTo(mask, a.shape), a, b);
  });
}

/** Checks the classes and priors against the model. */
function checkInversion(model: Classifier, classes: readonly number[], c: MiFaceConfig): void {
  check(classes.length > 0, () => 'miFace: classes must not be empty', 'BAD_OPTION');
  for (const k of classes) {
    check(
      Number.isInteger(k) && k >= 0 && k < model.numClasses,
      () => `miFace: class ${k} is not a class of the model, which has ${model.numClasses}`,
      'BAD_OPTION',
    );
  }
  check(
    c.tv === 0 || model.inputShape.length === 3,
    () => `miFace: tv needs image inputs [h, w, c], the model takes [${model.inputShape}]`,
    'BAD_OPTION',
  );
}

/**
 * Reconstructs one input per class of `classes` by MI-Face (see above). `options` are checked
 * against `miFaceSchema`. Reads each step's costs (the stopping rule needs them).
 */
export async function miFace(
  model: Classifier,
  classes: readonly number[],
  options: MiFaceOptions = {},
  run: InversionRun = {},
): Promise<InversionResult> {
  const c = parseWith('miFace', miFaceSchema, options);
  checkInversion(model, classes, c);
  const goal = tf.tensor1d(Array.from(classes), 'int32');
  const [lo, hi] = model.bounds;
  const state = new Stopping(classes.length, c);
  let x = startingImages(model, classes.length, c, run.start);
  let best = tf.clone(x);
  try {
    for (let i = 0; ; i++) {
      run.signal?.throwIfAborted();
      const { cost, grad } = inversionGradient(model, x, goal, c);
      const improved = state.observe(Array.from(await cost.data()), i);
      cost.dispose();
      if (improved.some(Boolean)) {
        const kept = selectRows(improved, x, best);
        best.dispose();
        best = kept;
      }
      const moving = state.moving;
      const next = moving.some(Boolean)
        ? tf.tidy(() =>
            selectRows(moving, tf.clipByValue(tf.sub(x, tf.mul(grad, c.lr)), lo, hi), x),
          )
        : undefined;
      tf.dispose([grad, x]);
      if (next === undefined) break;
      x = next;
      run.onProgress?.(i + 1, c.steps);
      // Give timers and abort signals a chance to run between steps.
      if (run.signal) await new Promise((resolve) => setTimeout(resolve, 0));
    }
  } catch (e) {
    tf.dispose([best, x]);
    throw e;
  } finally {
    goal.dispose();
  }
  return {
    x: best,
    classes: [...classes],
    cost: state.best,
    steps: state.taken,
    stopped: state.stopped as StopReason[],
    config: c,
  };
}
