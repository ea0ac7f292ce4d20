/**
 * Universal adversarial perturbation (Moosavi-Dezfooli, Fawzi, Fawzi & Frossard, CVPR 2017,
 * Algorithm 1): one perturbation v with ‖v‖ ≤ eps that changes the model's prediction on as many
 * inputs as possible. Passes over the fitting data in a seeded random order; for every input that
 * v does not yet fool, DeepFool finds the smallest extra step Δv that sends clip(x + v) across a
 * boundary, and v ← P(v + Δv), the projection onto the eps-ball. It stops once the fooling rate
 * on the fitting data reaches `targetFoolingRate` (the paper's 1 − δ) or after `maxEpochs` passes.
 *
 * Batched variant: the DeepFool steps of the `batchSize` examples of a mini-batch are computed at
 * the same v and then added one after another, each followed by the projection. With batchSize 1
 * this is the paper's algorithm exactly; larger batches trade a little fidelity for throughput.
 *
 * The fooling rate is the paper's: the fraction of inputs whose prediction changes,
 * k(clip(x + v)) ≠ k(x), whatever their label. Threat model: white-box, L∞ or L2, untargeted,
 * one perturbation for all inputs. Shapes: x [n, ...inputShape] in model.bounds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { disposeAttackResult } from '../result.js';
import { createDeepFool } from './deepfool.js';
import { parseWith } from './objective.js';
import { clipToBounds, projectToBall } from './projection.js';

export const uapConfigSchema = z
  .object({
    /** Radius ξ of the ball v lives in. */
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2']).default('linf'),
    /** Stop once this fraction of the fitting inputs is fooled (paper: 1 − δ = 0.8). */
    targetFoolingRate: z.number().min(0).max(1).default(0.8),
    /** Passes over the fitting data at most. */
    maxEpochs: z.number().int().min(1).default(5),
    /** Examples whose DeepFool steps are computed at the same v. */
    batchSize: z.number().int().min(1).default(16),
    /** DeepFool iterations per example and its overshoot. */
    deepfoolSteps: z.number().int().min(1).default(10),
    overshoot: z.number().min(0).default(0.02),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type UapConfigInput = z.input<typeof uapConfigSchema>;
export type UapConfig = z.infer<typeof uapConfigSchema>;

export interface UapOptions {
  /** Called after every mini-batch with the examples visited in this epoch. */
  onProgress?: (epoch: number, done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface UapResult {
  /** v, shaped like one example (`model.inputShape`), ‖v‖ ≤ eps. */
  perturbation: Float32Array;
  /** Fooling rate of v on the fitting data after each epoch. */
  foolingRates: number[];
  epochs: number;
  /** Example-gradients spent (DeepFool batch gradient evaluations times examples). */
  gradientEvaluations: number;
  seed: number;
  config: UapConfig;
}

/** Validates a config once; the returned fit does not re-check it. */
export function createUap(config: unknown) {
  const c = parseWith('uap', uapConfigSchema, config);
  return (model: Classifier, x: tf.Tensor, opts: UapOptions = {}) => fitUap(model, x, c, opts);
}

export async function universalPerturbation(
  model: Classifier,
  x: tf.Tensor,
  config: UapConfigInput,
  opts: UapOptions = {},
): Promise<UapResult> {
  return createUap(config)(model, x, opts);
}

/** clip(x + v) for a batch x and one perturbation v (broadcast over the batch). */
export function applyUniversal(
  x: tf.Tensor,
  v: tf.Tensor,
  bounds: readonly [number, number],
): tf.Tensor {
  return tf.tidy(() => clipToBounds(tf.add(x, v), bounds));
}

/** Fraction of rows of `x` whose prediction differs between x and clip(x + v). */
export async function foolingRate(model: Classifier, x: tf.Tensor, v: tf.Tensor): Promise<number> {
  const changed = tf.tidy(() => {
    const clean = tf.argMax(model.logits(x), 1);
    const adv = tf.argMax(model.logits(applyUniversal(x, v, model.bounds)), 1);
    return tf.mean(tf.cast(tf.notEqual(clean, adv), 'float32'));
  });
  const r = (await changed.data())[0];
  changed.dispose();
  return r;
}

async function fitUap(
  model: Classifier,
  x: tf.Tensor,
  c: UapConfig,
  opts: UapOptions,
): Promise<UapResult> {
  check(
    x.rank === model.inputShape.length + 1 &&
      tf.util.arraysEqual(x.shape.slice(1), model.inputShape),
    () => `uap: x must have shape [n, ${model.inputShape}], got [${x.shape}]`,
  );
  const n = x.shape[0];
  const rng = new Rng(c.seed);
  const deepFool = createDeepFool({
    norm: c.norm,
    steps: c.deepfoolSteps,
    overshoot: c.overshoot,
  });
  const cleanPred = tf.tidy(() => tf.argMax(model.logits(x), 1));
  let v: tf.Tensor = tf.zeros(model.inputShape);
  const foolingRates: number[] = [];
  let gradientEvaluations = 0;
  let epochs = 0;
  try {
    let rate = await foolingRate(model, x, v);
    while (c.eps > 0 && epochs < c.maxEpochs && rate < c.targetFoolingRate) {
      const order = rng.permutation(n);
      for (let start = 0; start < n; start += c.batchSize) {
        opts.signal?.throwIfAborted();
        const idx = Array.from(order.subarray(start, start + c.batchSize));
        const { xs, ys, fooled } = tf.tidy(() => {
          const at = tf.tensor1d(idx, 'int32');
          const xv = applyUniversal(tf.gather(x, at), v, model.bounds);
          const y = tf.gather(cleanPred, at) as tf.Tensor1D;
          return {
            xs: xv,
            ys: y,
            fooled: tf.notEqual(tf.argMax(model.logits(xv), 1), y),
          };
        });
        const f = await fooled.data();
        fooled.dispose();
        const todo = idx.flatMap((_, j) => (f[j] ? [] : [j]));
        if (todo.length === 0) {
          tf.dispose([xs, ys]);
          continue;
        }
        const [xt, yt] = tf.tidy(() => {
          const at = tf.tensor1d(todo, 'int32');
          return [tf.gather(xs, at), tf.gather(ys, at) as tf.Tensor1D];
        });
        tf.dispose([xs, ys]);
        const r = await deepFool(model, xt, yt, { signal: opts.signal });
        gradientEvaluations += r.gradientEvaluations * todo.length;
        const deltas = tf.sub(r.xAdv, xt);
        disposeAttackResult(r);
        tf.dispose([xt, yt]);
        const rows = tf.unstack(deltas);
        deltas.dispose();
        for (const dv of rows) {
          const next = tf.tidy(() => projectOne(tf.add(v, dv), c.eps, c.norm));
          v.dispose();
          v = next;
        }
        tf.dispose(rows);
        opts.onProgress?.(epochs + 1, Math.min(n, start + c.batchSize), n);
        await new Promise((resolve) => setImmediate(resolve));
      }
      epochs++;
      rate = await foolingRate(model, x, v);
      foolingRates.push(rate);
    }
    const perturbation = Float32Array.from(await v.data());
    return { perturbation, foolingRates, epochs, gradientEvaluations, seed: c.seed, config: c };
  } finally {
    tf.dispose([v, cleanPred]);
  }
}

/** P_{p,ξ}: projection of one perturbation onto the eps-ball (around 0). */
function projectOne(v: tf.Tensor, eps: number, norm: 'linf' | 'l2'): tf.Tensor {
  return tf.tidy(() => {
    const batch = tf.expandDims(v, 0);
    const zero = tf.zerosLike(batch);
    return tf.squeeze(projectToBall(batch, zero, eps, norm), [0]);
  });
}
