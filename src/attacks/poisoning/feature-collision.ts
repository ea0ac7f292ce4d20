/**
 * Feature collision ("Poison Frogs!", Shafahi, Huang, Najibi, Suciu, Studer, Dumitras & Goldstein
 * 2018): clean-label poisons that look like base-class images but sit on one target test image in
 * the reference model's feature space (the penultimate activations f), so a model whose last
 * layer is fine-tuned on them classifies the target as the base class. Each poison solves
 *
 *     p = argmin_x ‖f(x) − f(t)‖² + β‖x − b‖²,   β = β₀·(dim f / dim x)²
 *
 * by forward–backward splitting (Algorithm 1): a gradient step of length λ on the feature term,
 * then the proximal step x ← (x̂ + λβ·b)/(1 + λβ) towards the base image b, clipped to [0, 1]. A
 * step that does not lower the objective is rejected and that poison's λ multiplied by `decay`
 * (the safeguard of ART's implementation). Watermarking (Section 4.2): the base is first blended
 * with the target at opacity γ, b ← (1 − γ)·b + γ·t, and the poison starts from and stays near
 * that watermarked base.
 * `rate` poisons `round(rate·n)` examples of class `target` (the base class); labels unchanged.
 * Threat model: white-box feature extractor, victim fine-tunes its last layer on the poisoned set.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { type Dataset, exampleSize, selectExamples } from '../../data/dataset.js';
import { Rng } from '../../engine/rng.js';
import { type FeatureModel, featureModel } from '../../models/features.js';
import { seedSchema } from '../../objectives/threat-model.js';
import { parseWith } from '../../options.js';
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

export const featureCollisionSchema = z.strictObject({
  rate: rateSchema(0.001),
  seed: seedSchema.default(0),
  target: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe('class the target image should be predicted as (the poisons’ base class)'),
  targetImage: z
    .number({ error: (issue) => (issue.input === undefined ? 'is required' : undefined) })
    .int()
    .min(0)
    .describe('index of the target image in the test set'),
  maxIterations: z.number().int().min(0).default(100).describe('forward–backward iterations'),
  lr: z.number().positive().default(0.01).describe('step length λ of the feature step'),
  beta0: z.number().min(0).default(0.25).describe('similarity weight β₀ (β = β₀·(dim f/dim x)²)'),
  watermark: z
    .number()
    .min(0)
    .lt(1)
    .default(0.3)
    .describe('opacity γ of the target image blended into each base'),
  decay: z.number().gt(0).lt(1).default(0.5).describe('factor λ is cut by after a failed step'),
});
export type FeatureCollisionConfig = z.infer<typeof featureCollisionSchema>;

/** Poisons crafted together in one batch. */
const BATCH = 128;

/** Per example `[batch]`: ‖f(x) − f(t)‖² + β‖x − b‖². Caller owns the result. */
export function collisionObjective(
  fm: FeatureModel,
  x: tf.Tensor,
  targetFeatures: tf.Tensor2D,
  base: tf.Tensor,
  beta: number,
): tf.Tensor1D {
  return tf.tidy(() => {
    const near = tf.sum(tf.reshape(tf.squaredDifference(x, base), [x.shape[0], -1]), 1);
    return tf.add(featureDistance(fm, x, targetFeatures), tf.mul(near, beta)) as tf.Tensor1D;
  });
}

/** Per example `[batch]`: ‖f(x) − f(t)‖² in the penultimate layer. Caller owns the result. */
export function featureDistance(
  fm: FeatureModel,
  x: tf.Tensor,
  targetFeatures: tf.Tensor2D,
): tf.Tensor1D {
  return tf.tidy(() => {
    const { features } = fm.activations(x, [fm.penultimate]);
    return tf.sum(tf.squaredDifference(features[0], targetFeatures), 1) as tf.Tensor1D;
  });
}

/** What every forward–backward step reads. */
export interface Collision {
  fm: FeatureModel;
  targetFeatures: tf.Tensor2D;
  beta: number;
  c: FeatureCollisionConfig;
}

/** One forward–backward step from `x` with per-example steps `lr` `[batch, 1, 1, 1]`. Pure. */
export function collisionStep(
  s: Collision,
  x: tf.Tensor,
  base: tf.Tensor,
  lr: tf.Tensor,
): tf.Tensor {
  return tf.tidy(() => {
    const grad = tf.grad((z: tf.Tensor) => tf.sum(featureDistance(s.fm, z, s.targetFeatures)))(x);
    const forward = tf.sub(x, tf.mul(lr, grad));
    const lrBeta = tf.mul(lr, s.beta);
    const backward = tf.div(tf.add(forward, tf.mul(lrBeta, base)), tf.add(lrBeta, 1));
    return tf.clipByValue(backward, 0, 1);
  });
}

/** The iterations for one batch of bases `[batch, h, w, c]`; returns the poisons. Caller owns them. */
async function collide(
  s: Collision,
  base: tf.Tensor,
  ctx: PoisonContext,
  tick: () => Promise<void>,
): Promise<tf.Tensor> {
  const n = base.shape[0];
  let x = tf.clone(base);
  let objective = collisionObjective(s.fm, x, s.targetFeatures, base, s.beta);
  let lr = tf.fill([n, 1, 1, 1], s.c.lr);
  try {
    for (let k = 0; k < s.c.maxIterations; k++) {
      ctx.signal?.throwIfAborted();
      const next = tf.tidy(() => {
        const candidate = collisionStep(s, x, base, lr);
        const value = collisionObjective(s.fm, candidate, s.targetFeatures, base, s.beta);
        const better = tf.less(value, objective);
        const rows = tf.reshape(better, [n, 1, 1, 1]);
        return {
          x: tf.where(rows, candidate, x),
          objective: tf.where(better, value, objective) as tf.Tensor1D,
          lr: tf.where(rows, lr, tf.mul(lr, s.c.decay)),
        };
      });
      tf.dispose([x, objective, lr]);
      ({ x, objective, lr } = next);
      await tick();
    }
    return x;
  } catch (e) {
    x.dispose();
    throw e;
  } finally {
    tf.dispose([objective, lr]);
  }
}

/** Feature collision against the reference model `ctx.model`, aimed at `ctx.test[targetImage]`. */
export async function featureCollision(
  data: Dataset,
  config: z.input<typeof featureCollisionSchema>,
  ctx: PoisonContext,
): Promise<PoisonResult> {
  const owner = 'feature-collision';
  const c = parseWith(owner, featureCollisionSchema, config);
  checkTrainingSet(owner, data);
  checkClass(owner, 'target', c.target, data);
  const model = requireModel(owner, ctx, data);
  const target = targetImages(owner, 'targetImage', ctx, data, [c.targetImage], c.target);
  const fm = featureModel(model);
  const indices = drawIndices(
    owner,
    indicesWhere(data.labels, (y) => y === c.target),
    poisonCount(c.rate, data.labels.length),
    new Rng(c.seed),
    `examples of the base class ${c.target}`,
  );
  const size = exampleSize(data);
  const t = tf.tensor(target.x, target.shape);
  const targetFeatures = tf.tidy(() => {
    const r = fm.activations(t, [fm.penultimate]);
    return r.features[0];
  });
  const beta = c.beta0 * (targetFeatures.shape[1] / size) ** 2;
  const s: Collision = { fm, targetFeatures, beta, c };
  const out = poisonedCopy(data, owner);
  const total = indices.length * c.maxIterations;
  let done = 0;
  let before = 0;
  let after = 0;
  try {
    for (let start = 0; start < indices.length; start += BATCH) {
      const rows = indices.slice(start, start + BATCH);
      const batch = selectExamples(data, rows);
      const b = tf.tidy(() => watermarked(tf.tensor(batch.x, batch.shape), t, c.watermark));
      const tick = () => {
        done += rows.length;
        return step(ctx, done, total);
      };
      try {
        const p = await collide(s, b, ctx, tick);
        const [d0, d1] = tf.tidy(() => [
          tf.sum(featureDistance(fm, b, targetFeatures)),
          tf.sum(featureDistance(fm, p, targetFeatures)),
        ]);
        before += (await d0.data())[0];
        after += (await d1.data())[0];
        const values = await p.data();
        tf.dispose([p, d0, d1]);
        rows.forEach((j, i) => {
          out.x.set(values.subarray(i * size, (i + 1) * size), j * size);
        });
      } finally {
        b.dispose();
      }
    }
  } finally {
    tf.dispose([t, targetFeatures]);
  }
  const result = poisonResult(data, out, {
    attack: owner,
    options: c,
    seed: c.seed,
    poisonedIndices: indices,
    targetClass: c.target,
    targetImages: [c.targetImage],
    labelsChanged: false,
  });
  const m = Math.max(1, indices.length);
  return {
    ...result,
    summary: { featureDistanceBefore: before / m, featureDistanceAfter: after / m, beta },
  };
}

/** (1 − γ)·b + γ·t, t `[1, h, w, c]` broadcast over the bases. Call inside tf.tidy. */
function watermarked(b: tf.Tensor, t: tf.Tensor, gamma: number): tf.Tensor {
  return gamma === 0 ? b : tf.add(tf.mul(b, 1 - gamma), tf.mul(t, gamma));
}
