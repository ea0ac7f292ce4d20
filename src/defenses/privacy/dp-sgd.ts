/**
 * DP-SGD (Abadi et al. 2016) as a training step: each step draws a Poisson sample of the
 * training set (every example in with probability q, independently), clips every example's
 * gradient to L2 norm C (clipping.ts), adds N(0, σ²C²) to each coordinate of the clipped sum and
 * divides by the expected batch size q·n. Each step is one sampled Gaussian mechanism with noise
 * multiplier σ, so T steps are (ε, δ)-DP with ε from the RDP accountant (rdp-accountant.ts),
 * fed the number of steps actually taken.
 *
 * Threat model of the guarantee: add/remove-one neighbouring data sets, an adversary who sees every
 * intermediate model. It holds only with Poisson sampling and exact per-example clipping, which
 * is why layers with cross-example statistics (BatchNormalization) are refused. The noise comes
 * from parry's seeded xoshiro128** generator: reproducible, and not a cryptographic source (nor
 * is the float32 Gaussian; see Mironov 2012 on floating-point attacks).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import { DropoutSeeder } from '../../models/dropout.js';
import { parseWith, requiredMessage } from '../../options.js';
import type { GradientStep, TrainProgress } from '../../train/loop.js';
import {
  type ClippedSum,
  type ClippingPlan,
  clippedGradientSum,
  clippingPlan,
} from './clipping.js';
import { type EpsilonResult, epsilonFor } from './rdp-accountant.js';

const openUnit = (v: number) => v > 0 && v < 1;

export const dpSgdSchema = z.strictObject({
  noiseMultiplier: z
    .number({ error: requiredMessage })
    .refine((v) => v > 0 && Number.isFinite(v), {
      error: (i) => `must be > 0, got ${String(i.input)}`,
    })
    .describe('σ: noise std over the clipping norm'),
  maxGradNorm: z
    .number({ error: requiredMessage })
    .refine((v) => v > 0 && Number.isFinite(v), {
      error: (i) => `must be > 0, got ${String(i.input)}`,
    })
    .describe('C: per-example gradient L2 clipping norm'),
  delta: z
    .number()
    .refine(openUnit, { error: (i) => `must be in (0, 1), got ${String(i.input)}` })
    .default(1e-5)
    .describe('δ of the (ε, δ) guarantee'),
  clipping: z
    .enum(['auto', 'fast', 'reference'])
    .default('auto')
    .describe('per-example clipping path (auto: fast when every trainable layer allows it)'),
  microbatch: z
    .number()
    .int()
    .min(1)
    .default(64)
    .describe('examples per pass of the fast clipping path (memory only; same result)'),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
});
export type DpSgdConfig = z.output<typeof dpSgdSchema>;

/**
 * Poisson sampling: each of 0 … n−1 independently with probability q, in increasing order. Draws
 * the gaps between chosen indices, Geometric(q): ⌊log U / log(1 − q)⌋ with U uniform on (0, 1],
 * so a step costs O(q·n) draws, not n.
 */
export function poissonSample(n: number, q: number, rng: Rng): Int32Array {
  if (!(q > 0 && q <= 1))
    throw new ParryError('BAD_OPTION', `poissonSample: q must be in (0, 1], got ${q}`);
  const out: number[] = [];
  const logKeep = Math.log1p(-q); // −∞ at q = 1: every gap is 0
  for (let i = -1; ; ) {
    const u = 1 - rng.next();
    i += 1 + (q === 1 ? 0 : Math.floor(Math.log(u) / logKeep));
    if (i >= n) break;
    out.push(i);
  }
  return Int32Array.from(out);
}

export interface PrivateGradientOptions {
  noiseMultiplier: number;
  maxGradNorm: number;
  /** The divisor of the noisy sum: q·n under Poisson sampling (not the drawn batch size). */
  expectedBatchSize: number;
  clipping?: 'auto' | 'fast' | 'reference';
  microbatch?: number;
  labelSmoothing?: number;
}

export interface PrivateGradients {
  /** (Σ_i clip_C(g_i) + N(0, σ²C²)) / expectedBatchSize, keyed by variable name. */
  grads: tf.NamedTensorMap;
  /** Per-example gradient norms before clipping, [batch]. */
  norms: tf.Tensor1D;
  lossSum: tf.Scalar;
  correct: tf.Scalar;
}

/**
 * One DP-SGD update direction for the batch x [batch, ...], labels [batch] (an empty batch gives
 * pure noise). Noise, and the masks of Dropout layers, come from `rng`: each microbatch draws
 * its own masks (one example at a time on the reference path, which would otherwise give every
 * example the same mask); the layers' own seeds are put back afterwards. Caller owns the
 * result; no input is disposed.
 */
export function privateGradients(
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  opts: PrivateGradientOptions,
  rng: Rng,
): PrivateGradients {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const clipped = clippedInChunks(model, x, labels, opts, rng);
  const std = opts.noiseMultiplier * opts.maxGradNorm;
  const grads = tf.tidy(() => {
    const out: tf.NamedTensorMap = {};
    for (const v of vars) {
      let g = clipped.sums[v.name];
      if (std > 0) g = tf.add(g, tf.tensor(rng.fillNormal(new Float32Array(v.size), std), v.shape));
      out[v.name] = tf.div(g, opts.expectedBatchSize);
    }
    return out;
  });
  tf.dispose(Object.values(clipped.sums));
  return { grads, norms: clipped.norms, lossSum: clipped.lossSum, correct: clipped.correct };
}

/** clippedGradientSum over microbatches of the batch, added up; Dropout seeded per microbatch. */
function clippedInChunks(
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  opts: PrivateGradientOptions,
  rng: Rng,
): ClippedSum {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const m = x.shape[0];
  const dropout = new DropoutSeeder(model.layers);
  const reference = opts.clipping === 'reference' || clippingPlan(model).path === 'reference';
  const chunk = dropout.size > 0 && reference ? 1 : (opts.microbatch ?? 64);
  let acc: Omit<ClippedSum, 'norms'> = {
    sums: Object.fromEntries(vars.map((v) => [v.name, tf.zerosLike(v)])),
    lossSum: tf.scalar(0),
    correct: tf.scalar(0, 'int32'),
  };
  const norms: tf.Tensor1D[] = [];
  const release = (r: Omit<ClippedSum, 'norms'>) =>
    tf.dispose([...Object.values(r.sums), r.lossSum, r.correct]);
  try {
    for (let start = 0; start < m; start += chunk) {
      const size = Math.min(chunk, m - start);
      if (dropout.size > 0) dropout.seed(rng.nextSeed());
      const part = tf.tidy(() =>
        clippedGradientSum(model, tf.slice(x, start, size), tf.slice(labels, start, size), opts),
      );
      norms.push(part.norms);
      const sum = acc;
      acc = tf.tidy(() => ({
        sums: Object.fromEntries(
          vars.map((v) => [v.name, tf.add(sum.sums[v.name], part.sums[v.name])]),
        ),
        lossSum: tf.add(sum.lossSum, part.lossSum) as tf.Scalar,
        correct: tf.add(sum.correct, part.correct) as tf.Scalar,
      }));
      release(sum);
      release(part);
    }
  } catch (e) {
    release(acc);
    tf.dispose(norms);
    throw e;
  } finally {
    dropout.restore();
  }
  const all = (
    norms.length === 0 ? tf.zeros([0]) : norms.length === 1 ? norms[0] : tf.concat(norms)
  ) as tf.Tensor1D;
  if (norms.length > 1) tf.dispose(norms);
  return { ...acc, norms: all };
}

/** What a DP-SGD run adds to training.json under 'dp-sgd'. */
export interface DpSgdRecord extends Record<string, unknown> {
  noise_multiplier: number;
  max_grad_norm: number;
  sample_rate: number;
  expected_batch_size: number;
  steps: number;
  delta: number;
  epsilon: number;
  order: number;
  epsilon_balle: number;
  order_balle: number;
}

export interface DpSgd {
  /** The loop's hook (trainModel's `gradientStep`). */
  step: GradientStep;
  readonly plan: ClippingPlan;
  readonly sampleRate: number;
  /** Steps taken so far (each one sampled Gaussian mechanism, empty batches included). */
  steps(): number;
  /** (ε, δ) after the steps taken so far; ε = 0 before the first. */
  privacy(): EpsilonResult;
  record(): DpSgdRecord;
}

/**
 * DP-SGD for `model` on a training set of `examples` with expected batch size `batchSize`
 * (q = batchSize / examples). Refuses BatchNormalization (clippingPlan) and q > 1.
 */
export function createDpSgd(
  model: tfl.LayersModel,
  config: Partial<DpSgdConfig>,
  data: { examples: number; batchSize: number; labelSmoothing?: number },
): DpSgd {
  const c = parseWith('dp-sgd', dpSgdSchema, config);
  const { examples, batchSize } = data;
  if (!(batchSize <= examples))
    throw new ParryError(
      'BAD_OPTION',
      `dp-sgd: batchSize (the expected Poisson batch) must be <= the ${examples} training examples, got ${batchSize}`,
    );
  const plan = clippingPlan(model);
  if (c.clipping === 'fast' && plan.path !== 'fast')
    throw new ParryError('UNSUPPORTED', `dp-sgd: no fast clipping path: ${plan.reason}`);
  const q = batchSize / examples;
  const rng = new Rng(c.seed);
  const samplerRng = rng.fork();
  const noiseRng = rng.fork();
  let taken = 0;
  const privacy = (): EpsilonResult =>
    taken === 0
      ? { epsilon: 0, order: Number.NaN, epsilonBalle: 0, orderBalle: Number.NaN }
      : epsilonFor({
          noiseMultiplier: c.noiseMultiplier,
          sampleRate: q,
          steps: taken,
          delta: c.delta,
        });
  const step: GradientStep = {
    sample: (n: number) => poissonSample(n, q, samplerRng),
    gradients: (net, x, labels, _progress: TrainProgress) => {
      const r = privateGradients(
        net,
        x,
        labels,
        {
          noiseMultiplier: c.noiseMultiplier,
          maxGradNorm: c.maxGradNorm,
          expectedBatchSize: batchSize,
          clipping: c.clipping,
          microbatch: c.microbatch,
          labelSmoothing: data.labelSmoothing,
        },
        noiseRng,
      );
      r.norms.dispose();
      taken++;
      return { grads: r.grads, lossSum: r.lossSum, correct: r.correct };
    },
  };
  return {
    step,
    plan,
    sampleRate: q,
    steps: () => taken,
    privacy,
    record: () => {
      const p = privacy();
      return {
        method:
          'DP-SGD (Abadi et al. 2016), Poisson sampling, RDP accountant (Mironov et al. 2019)',
        noise_multiplier: c.noiseMultiplier,
        max_grad_norm: c.maxGradNorm,
        sample_rate: q,
        expected_batch_size: batchSize,
        steps: taken,
        delta: c.delta,
        epsilon: p.epsilon,
        order: p.order,
        epsilon_balle: p.epsilonBalle,
        order_balle: p.orderBalle,
        clipping: plan.path === 'fast' && c.clipping !== 'reference' ? 'fast' : 'reference',
        layers: Object.fromEntries(
          plan.layers.map((l) => [l.name, c.clipping === 'reference' ? 'reference' : l.rule]),
        ),
        seed: c.seed,
      };
    },
  };
}
