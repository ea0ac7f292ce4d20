/**
 * Saliency maps: how much each input value of x contributes to one class's logit.
 *
 * - 'gradient': ∂z_c/∂x (Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks",
 *   2014).
 * - 'smoothgrad': the mean of ∂z_c/∂x at x + ε, ε ~ N(0, σ²I), σ = noise·(hi − lo) (Smilkov et al.,
 *   "SmoothGrad: removing noise by adding noise", 2017).
 * - 'integrated-gradients': (x − x')⊙∫₀¹ ∂z_c/∂x(x' + α(x − x')) dα from a baseline x'
 *   (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017).
 *
 * The explained function is always the pre-softmax logit z_c of the chosen class (Simonyan et al.'s
 * class score): softmax couples the classes and saturates, which hides a class's own evidence.
 * Shapes: x `[batch, ...model.inputShape]`, one class per example; every map has x's shape and the
 * caller owns it. Gradients of the noisy or interpolated copies are taken in chunks of
 * max(CHUNK_ROWS, batch) rows, so memory does not grow with the number of samples or steps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../engine/rng.js';
import { check } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { parseWith } from '../options.js';

export type SaliencyMethod = 'gradient' | 'smoothgrad' | 'integrated-gradients';
export const SALIENCY_METHODS: readonly SaliencyMethod[] = [
  'gradient',
  'smoothgrad',
  'integrated-gradients',
];

export interface SaliencyOptions {
  /** smoothgrad: noisy samples (default 25); integrated-gradients: path steps (default 50). */
  samples?: number;
  /**
   * smoothgrad: noise std as a fraction of the bounds' range (default 0.15, Smilkov et al.
   * 2017).
   */
  noise?: number;
  /**
   * integrated-gradients baseline: a constant value (default: the lower bound, i.e. black) or a
   * tensor of x's shape.
   */
  baseline?: number | tf.Tensor;
  seed?: number;
}

const DEFAULT_SMOOTHGRAD_SAMPLES = 25;
const DEFAULT_IG_STEPS = 50;
/** Rows (copies of examples) per forward/backward pass of smoothgrad and integrated gradients. */
const CHUNK_ROWS = 128;

const optionsSchema = z
  .object({
    samples: z.number().int().min(1).optional(),
    noise: z.number().min(0).default(0.15),
    baseline: z.union([z.number(), z.custom<tf.Tensor>((v) => v instanceof tf.Tensor)]).optional(),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
type Options = z.output<typeof optionsSchema>;

/**
 * Attribution of `classes[i]`'s logit to each input value of x[i]; same shape as x; caller owns
 * the result. Options a method does not use are ignored (`samples` means noisy samples for
 * smoothgrad and path steps for integrated gradients).
 *
 * SmoothGrad's noisy points x + ε are NOT clipped to `model.bounds`: the method averages the
 * gradient over a Gaussian neighbourhood of x, and clipping would pile samples onto the faces of
 * the box (most pixels of an image sit at 0), biasing the average towards the gradient there. The
 * noise comes from `seed` (default 0): the same seed, x and classes give the same map.
 */
export function saliency(
  model: Classifier,
  x: tf.Tensor,
  classes: Int32Array | number[],
  method: SaliencyMethod,
  options: SaliencyOptions = {},
): tf.Tensor {
  check(
    SALIENCY_METHODS.includes(method),
    () => `saliency: method must be one of ${SALIENCY_METHODS.join(', ')}, got '${method}'`,
    'BAD_OPTION',
  );
  const o = parseWith('saliency', optionsSchema, options);
  checkInputs('saliency', model, x, classes);
  if (method === 'integrated-gradients') return integrate('saliency', model, x, classes, o).attr;
  const oneHot = oneHotOf(classes, model.numClasses);
  try {
    if (method === 'gradient') return tf.tidy(() => classGradient(model, x, oneHot));
    const [lo, hi] = model.bounds;
    const n = o.samples ?? DEFAULT_SMOOTHGRAD_SAMPLES;
    return smoothGrad(model, x, oneHot, n, o.noise * (hi - lo), new Rng(o.seed));
  } finally {
    oneHot.dispose();
  }
}

/**
 * Integrated gradients with its completeness gap. `attributions` (x's shape, caller owns) sum, per
 * example, to z_c(x) − z_c(x') up to the quadrature error; `delta[i]` = Σ attributions[i] −
 * (z_c(x_i) − z_c(x'_i)). Sundararajan et al. recommend checking it: within ~5% of the logit
 * difference, else raise the step count (`samples`).
 */
export function integratedGradients(
  model: Classifier,
  x: tf.Tensor,
  classes: Int32Array | number[],
  options: SaliencyOptions = {},
): { attributions: tf.Tensor; delta: Float32Array } {
  const o = parseWith('integratedGradients', optionsSchema, options);
  checkInputs('integratedGradients', model, x, classes);
  const { attr, delta } = integrate('integratedGradients', model, x, classes, o, true);
  return { attributions: attr, delta: delta! };
}

/** ∂/∂xs of Σᵢ z_{cᵢ}(xsᵢ): row i's gradient of its own class logit (examples are independent). */
function classGradient(model: Classifier, xs: tf.Tensor, oneHot: tf.Tensor): tf.Tensor {
  return tf.grad((v: tf.Tensor) => tf.sum(tf.mul(model.logits(v), oneHot)))(xs);
}

/**
 * SmoothGrad: (1/n)·Σⱼ ∂z_c/∂x(x + εⱼ), εⱼ ~ N(0, σ²I) unclipped. Each chunk stacks k noisy copies
 * of the whole batch (sample-major) and draws its noise from the next seed of `rng`.
 */
function smoothGrad(
  model: Classifier,
  x: tf.Tensor,
  oneHot: tf.Tensor,
  n: number,
  sigma: number,
  rng: Rng,
): tf.Tensor {
  const batch = x.shape[0];
  const rest = x.shape.slice(1);
  const perChunk = Math.max(1, Math.floor(CHUNK_ROWS / batch));
  let sum = tf.zerosLike(x);
  for (let done = 0; done < n; done += perChunk) {
    const k = Math.min(perChunk, n - done);
    const seed = rng.nextSeed();
    const next = tf.tidy(() => {
      const xs = tf.tile(x, [k, ...rest.map(() => 1)]);
      const noisy =
        sigma > 0 ? tf.add(xs, tf.randomNormal(xs.shape, 0, sigma, 'float32', seed)) : xs;
      const grad = classGradient(model, noisy, tf.tile(oneHot, [k, 1]));
      return tf.add(sum, tf.sum(tf.reshape(grad, [k, batch, ...rest]), 0));
    });
    sum.dispose();
    sum = next;
  }
  const mean = tf.div(sum, n);
  sum.dispose();
  return mean;
}

/**
 * Integrated gradients: attributions (x − x')⊙ĝ, where ĝ is the path average of ∂z_c/∂x from
 * `pathAverage`. With `withDelta`, also z_c(x) − z_c(x') (one extra forward pass each) and the
 * completeness gap, read back synchronously (the function's boundary).
 */
function integrate(
  fn: string,
  model: Classifier,
  x: tf.Tensor,
  classes: Int32Array | number[],
  o: Options,
  withDelta = false,
): { attr: tf.Tensor; delta?: Float32Array } {
  const baselineT = resolveBaseline(fn, model, x, o.baseline);
  const oneHot = oneHotOf(classes, model.numClasses);
  const diff = tf.sub(x, baselineT);
  const average = pathAverage(model, baselineT, diff, oneHot, o.samples ?? DEFAULT_IG_STEPS);
  const attr = tf.mul(diff, average);
  let delta: Float32Array | undefined;
  if (withDelta) {
    delta = tf.tidy(() => {
      const fx = tf.sum(tf.mul(model.logits(x), oneHot), 1);
      const fb = tf.sum(tf.mul(model.logits(baselineT), oneHot), 1);
      const total = tf.sum(tf.reshape(attr, [x.shape[0], -1]), 1);
      return tf.sub(total, tf.sub(fx, fb)).dataSync() as Float32Array;
    });
  }
  tf.dispose([average, diff, oneHot, baselineT]);
  return { attr, delta };
}

/**
 * ∫₀¹ ∂z_c/∂x(x' + α·diff) dα by the trapezoidal rule on m equal steps: gradients at αⱼ = j/m,
 * j = 0..m (m + 1 evaluations), weighted 1/(2m) at the two ends and 1/m inside. Its error is
 * O(1/m²) where the gradient is smooth along the path, against O(1/m) for the right Riemann sum
 * of the paper, for one extra gradient; ReLU networks have kinks on the path, so the error there
 * is larger, and `delta` reports it. Each chunk stacks k path points of the whole batch.
 */
function pathAverage(
  model: Classifier,
  baseline: tf.Tensor,
  diff: tf.Tensor,
  oneHot: tf.Tensor,
  m: number,
): tf.Tensor {
  const [batch, ...rest] = diff.shape;
  const ones = rest.map(() => 1);
  const perChunk = Math.max(1, Math.floor(CHUNK_ROWS / batch));
  let sum = tf.zerosLike(diff);
  for (let j0 = 0; j0 <= m; j0 += perChunk) {
    const k = Math.min(perChunk, m + 1 - j0);
    const alphas = Array.from({ length: k }, (_, i) => (j0 + i) / m);
    const weights = alphas.map((_, i) => (j0 + i === 0 || j0 + i === m ? 0.5 / m : 1 / m));
    const next = tf.tidy(() => {
      const a = tf.tensor(alphas, [k, 1, ...ones]);
      const points = tf.add(tf.expandDims(baseline, 0), tf.mul(a, tf.expandDims(diff, 0)));
      const xs = tf.reshape(points, [k * batch, ...rest]);
      const grad = tf.reshape(classGradient(model, xs, tf.tile(oneHot, [k, 1])), [
        k,
        ...diff.shape,
      ]);
      return tf.add(sum, tf.sum(tf.mul(grad, tf.tensor(weights, [k, 1, ...ones])), 0));
    });
    sum.dispose();
    sum = next;
  }
  return sum;
}

/** The baseline as a tensor of x's shape (a new tensor the caller disposes). */
function resolveBaseline(
  fn: string,
  model: Classifier,
  x: tf.Tensor,
  baseline: number | tf.Tensor | undefined,
): tf.Tensor {
  if (baseline === undefined || typeof baseline === 'number') {
    return tf.fill(x.shape, baseline ?? model.bounds[0]);
  }
  check(
    tf.util.arraysEqual(baseline.shape, x.shape),
    () => `${fn}: baseline must have x's shape [${x.shape}], got [${baseline.shape}]`,
  );
  check(allFinite(baseline), () => `${fn}: baseline has NaN or infinite values`);
  return tf.cast(baseline, 'float32');
}

/** Checks x `[batch, ...inputShape]` (float32, finite) and one class in range per example. */
function checkInputs(
  fn: string,
  model: Classifier,
  x: tf.Tensor,
  classes: Int32Array | number[],
): void {
  check(x instanceof tf.Tensor, () => `${fn}: x must be a tensor`);
  check(
    x.rank === model.inputShape.length + 1 &&
      tf.util.arraysEqual(x.shape.slice(1), model.inputShape),
    () => `${fn}: x must have shape [batch, ${model.inputShape}], got [${x.shape}]`,
  );
  check(x.dtype === 'float32', () => `${fn}: x must be float32, got ${x.dtype}`);
  check(
    classes != null && classes.length === x.shape[0],
    () => `${fn}: classes must have one entry per example (${x.shape[0]}), got ${classes?.length}`,
  );
  for (let i = 0; i < classes.length; i++) {
    const c = classes[i];
    check(
      Number.isInteger(c) && c >= 0 && c < model.numClasses,
      () => `${fn}: classes[${i}] must be an integer in [0, ${model.numClasses}), got ${c}`,
    );
  }
  check(allFinite(x), () => `${fn}: x has NaN or infinite values`);
}

/** `[batch, numClasses]` selector of each example's class (in JS: tf.oneHot needs depth >= 2). */
function oneHotOf(classes: Int32Array | number[], numClasses: number): tf.Tensor {
  const v = new Float32Array(classes.length * numClasses);
  for (let i = 0; i < classes.length; i++) v[i * numClasses + classes[i]] = 1;
  return tf.tensor2d(v, [classes.length, numClasses]);
}

function allFinite(t: tf.Tensor): boolean {
  return tf.tidy(() => tf.all(tf.isFinite(t)).dataSync()[0] === 1);
}

export { pngDataUri, saliencyPng } from './heatmap.js';
