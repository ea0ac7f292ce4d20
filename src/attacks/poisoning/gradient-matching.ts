/**
 * Gradient matching ("Witches' Brew", Geiping, Fowl, Huang, Czaja, Taylor, Moeller & Goldstein
 * 2021): clean-label poisons — `round(rate·n)` examples of the intended class `target`, each
 * changed by at most `eps` (L∞) and kept in [0, 1] — whose training gradient points where the
 * adversarial loss of the target images does, so that training from scratch on the poisoned set
 * also learns to put the targets in class `target`. With g_adv = ∇θ L(f(x_t; θ), target) and
 * g(δ) = ∇θ L(f(x_p + δ; θ), y_p) on the reference model θ, the poisons minimise the alignment loss
 *
 *     B(δ) = 1 − ⟨g(δ), g_adv⟩ / (‖g(δ)‖·‖g_adv‖)
 *
 * by signed Adam (the update uses sign ∇δ B, learning rate τ·eps, cut ×0.1 at 3/8, 5/8 and 7/8
 * of the steps) from a random start eps·N(0, 1) clipped to the ball, projecting after each step;
 * over `restarts` the perturbation with the lowest final B wins. Gradients of poison batches are
 * matched batch by batch (as the authors' code does) and the step taken on all of them at once.
 * Left out: the differentiable data augmentation of the paper.
 *
 * Which parameters θ are matched: 'dense' (the weights of the Dense layers) or 'all'. tfjs has no
 * gradient for the gradient of a convolution's filter (Conv2DBackpropFilter), so 'all' on a
 * convolutional model is UNSUPPORTED; 'dense' differentiates through convolutions' forward passes
 * only; the matched layers and those after them must use relu, linear or softplus activations
 * (gradient-alignment.ts says why). Every parry architecture qualifies.
 * Threat model: the attacker edits a small budget of training images (not labels) and knows a
 * reference model; the victim trains from scratch on the poisoned set.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { type Dataset, exampleSize, selectExamples } from '../../data/dataset.js';
import { Rng } from '../../engine/rng.js';
import { epsSchema, seedSchema } from '../../objectives/threat-model.js';
import { parseWith } from '../../options.js';
import {
  alignmentLoss,
  type ParameterModel,
  parameterGradient,
  parameterModel,
} from './gradient-alignment.js';
import { type PoisonResult, poisonResult } from './poison-manifest.js';
import {
  checkClass,
  checkTrainingSet,
  drawIndices,
  indicesWhere,
  type PoisonContext,
  poisonCount,
  poisonedCopy,
  rateSchema,
  requireModel,
  step,
  targetImages,
} from './selection.js';

export const gradientMatchingSchema = z.strictObject({
  rate: rateSchema(0.01).describe('budget: fraction of the training set poisoned, in [0, 1]'),
  seed: seedSchema.default(0),
  target: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('class the target images should be predicted as (the poisons are drawn from it)'),
  targetImages: z
    .array(z.coerce.number().int().min(0), {
      error: (issue) => (issue.input === undefined ? 'is required' : undefined),
    })
    .min(1)
    .describe('indices of the target images in the test set'),
  eps: epsSchema.default(0.1).describe('L∞ budget of each poison’s perturbation'),
  steps: z.number().int().min(0).default(250).describe('signed Adam steps per restart'),
  restarts: z.number().int().min(1).default(8).describe('restarts; the lowest alignment loss wins'),
  tau: z.number().positive().default(0.1).describe('Adam learning rate as a fraction of eps'),
  params: z
    .enum(['dense', 'all'])
    .default('dense')
    .describe('parameters whose gradients are matched: Dense layers, or all'),
});
export type GradientMatchingConfig = z.infer<typeof gradientMatchingSchema>;

/** Poisons per gradient batch. */
const BATCH = 128;
const BETA1 = 0.9;
const BETA2 = 0.999;
const ADAM_EPS = 1e-8;

/** What every crafting step reads: the poisons, their labels, the target gradient. */
export interface Brew {
  pm: ParameterModel;
  x: tf.Tensor;
  labels: tf.Tensor1D;
  targetGrad: tf.Tensor[];
  c: GradientMatchingConfig;
}

/** Rows [start, start + size) of a batch tensor. */
const rows = (t: tf.Tensor, start: number, size: number) =>
  tf.slice(t, [start, ...t.shape.slice(1).map(() => 0)], [size, ...t.shape.slice(1)]);

/**
 * ∇δ of the alignment loss, batch by batch, and the mean of the batches' losses. Pure; caller
 * owns both.
 */
export function brewGradient(b: Brew, delta: tf.Tensor): { grad: tf.Tensor; loss: tf.Scalar } {
  return tf.tidy(() => {
    const n = b.x.shape[0];
    const grads: tf.Tensor[] = [];
    const losses: tf.Scalar[] = [];
    for (let start = 0; start < n; start += BATCH) {
      const size = Math.min(BATCH, n - start);
      const xb = rows(b.x, start, size);
      const yb = rows(b.labels, start, size) as tf.Tensor1D;
      const { value, grad } = tf.valueAndGrad((d: tf.Tensor) =>
        alignmentLoss(b.pm, tf.add(xb, d), yb, b.targetGrad),
      )(rows(delta, start, size));
      grads.push(grad);
      losses.push(value);
    }
    return { grad: tf.concat(grads, 0), loss: tf.div(tf.addN(losses), losses.length) as tf.Scalar };
  });
}

/** δ clipped to the eps-ball and x + δ into [0, 1]. Call inside tf.tidy. */
function project(x: tf.Tensor, delta: tf.Tensor, eps: number): tf.Tensor {
  return tf.sub(tf.clipByValue(tf.add(x, tf.clipByValue(delta, -eps, eps)), 0, 1), x);
}

/** One restart: signed Adam from a random start. Returns δ and its final loss; caller owns both. */
async function brewOnce(
  b: Brew,
  rng: Rng,
  tick: () => Promise<void>,
): Promise<{ delta: tf.Tensor; loss: tf.Scalar }> {
  const { eps, steps, tau } = b.c;
  const noise = rng.fillNormal(new Float32Array(b.x.size), eps);
  let delta = tf.tidy(() => project(b.x, tf.tensor(noise, b.x.shape), eps));
  let m = tf.zerosLike(delta);
  let v = tf.zerosLike(delta);
  const milestones = [3 / 8, 5 / 8, 7 / 8].map((f) => Math.floor(f * steps));
  try {
    for (let k = 0; k < steps; k++) {
      const lr = tau * eps * 0.1 ** milestones.filter((s) => k >= s).length;
      const next = tf.tidy(() => {
        const { grad, loss } = brewGradient(b, delta);
        loss.dispose();
        const g = tf.sign(grad);
        const m1 = tf.add(tf.mul(m, BETA1), tf.mul(g, 1 - BETA1));
        const v1 = tf.add(tf.mul(v, BETA2), tf.mul(tf.square(g), 1 - BETA2));
        const mHat = tf.div(m1, 1 - BETA1 ** (k + 1));
        const vHat = tf.div(v1, 1 - BETA2 ** (k + 1));
        const moved = tf.sub(delta, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), ADAM_EPS)), lr));
        return { delta: project(b.x, moved, eps), m: m1, v: v1 };
      });
      tf.dispose([delta, m, v]);
      ({ delta, m, v } = next);
      await tick();
    }
    const { grad, loss } = brewGradient(b, delta);
    grad.dispose();
    return { delta, loss };
  } catch (e) {
    delta.dispose();
    throw e;
  } finally {
    tf.dispose([m, v]);
  }
}

/** Gradient matching against the reference model `ctx.model`, aimed at `ctx.test[targetImages]`. */
export async function gradientMatching(
  data: Dataset,
  config: z.input<typeof gradientMatchingSchema>,
  ctx: PoisonContext,
): Promise<PoisonResult> {
  const owner = 'gradient-matching';
  const c = parseWith(owner, gradientMatchingSchema, config);
  checkTrainingSet(owner, data);
  checkClass(owner, 'target', c.target, data);
  const model = requireModel(owner, ctx, data);
  const targets = targetImages(owner, 'targetImages', ctx, data, c.targetImages, c.target);
  const pm = parameterModel(model, c.params);
  const rng = new Rng(c.seed);
  const indices = drawIndices(
    owner,
    indicesWhere(data.labels, (y) => y === c.target),
    poisonCount(c.rate, data.labels.length),
    rng.fork(),
    `examples of the intended class ${c.target}`,
  );
  const out = poisonedCopy(data, owner);
  const summary: Record<string, number> = {};
  if (indices.length > 0) {
    const poisons = selectExamples(data, indices);
    const xt = tf.tensor(targets.x, targets.shape);
    const yt = tf.fill([targets.labels.length], c.target, 'int32') as tf.Tensor1D;
    const b: Brew = {
      pm,
      x: tf.tensor(poisons.x, poisons.shape),
      labels: tf.tensor1d(poisons.labels, 'int32'),
      targetGrad: parameterGradient(pm, xt, yt),
      c,
    };
    tf.dispose([xt, yt]);
    try {
      const delta = await brew(b, rng, ctx, summary);
      const poisoned = tf.tidy(() => tf.add(b.x, delta));
      const values = await poisoned.data();
      tf.dispose([poisoned, delta]);
      const size = exampleSize(data);
      indices.forEach((j, i) => {
        out.x.set(values.subarray(i * size, (i + 1) * size), j * size);
      });
    } finally {
      tf.dispose([b.x, b.labels, ...b.targetGrad]);
    }
  }
  const result = poisonResult(data, out, {
    attack: owner,
    options: c,
    seed: c.seed,
    poisonedIndices: indices,
    targetClass: c.target,
    targetImages: [...c.targetImages],
    labelsChanged: false,
  });
  return { ...result, summary };
}

/** Every restart; keeps the δ with the lowest alignment loss. Records the losses in `summary`. */
async function brew(
  b: Brew,
  rng: Rng,
  ctx: PoisonContext,
  summary: Record<string, number>,
): Promise<tf.Tensor> {
  const zero = tf.zerosLike(b.x);
  const clean = brewGradient(b, zero);
  summary.alignmentLossClean = (await clean.loss.data())[0];
  tf.dispose([zero, clean.grad, clean.loss]);
  const total = b.c.steps * b.c.restarts;
  let done = 0;
  const tick = () => step(ctx, ++done, total);
  let best: { delta: tf.Tensor; loss: number } | undefined;
  try {
    for (let r = 0; r < b.c.restarts; r++) {
      const run = await brewOnce(b, rng.fork(), tick);
      const loss = (await run.loss.data())[0];
      run.loss.dispose();
      if (best === undefined || loss < best.loss) {
        best?.delta.dispose();
        best = { delta: run.delta, loss };
        summary.bestRestart = r;
      } else {
        run.delta.dispose();
      }
    }
  } catch (e) {
    best?.delta.dispose();
    throw e;
  }
  summary.alignmentLoss = best!.loss;
  return best!.delta;
}
