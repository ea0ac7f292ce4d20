/**
 * The one training loop of `parry train`: mini-batch training of a tfjs-layers model on logits
 * with softmax cross-entropy. Robust-training methods plug in by replacing the batch loss
 * (`lossFn`), so they share shuffling, progress, cancellation and bookkeeping.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { type Dataset, exampleSize } from '../data/index.js';
import type { WorkerPool } from '../engine/pool.js';
import { Rng } from '../engine/rng.js';
import { ParryError } from '../errors.js';
import { DropoutSeeder } from '../models/dropout.js';
import { releaseCraftingEngine } from '../models/index.js';
import { countCorrect, smoothedCrossEntropy } from '../objectives/losses.js';
import { parseWith } from '../options.js';
import { type ParallelLoss, ParallelStep } from './parallel.js';
import type { GradientStep, LossFn, PrepareFn, TrainProgress } from './steps.js';

export type { GradientStep, LossFn, PrepareFn, TrainProgress } from './steps.js';

export const trainConfigSchema = z
  .object({
    epochs: z.number().int().min(1).default(5),
    batchSize: z.number().int().min(1).default(128),
    lr: z.number().positive().default(1e-3),
    optimizer: z.enum(['adam', 'sgd', 'momentum']).default('adam'),
    /**
     * Learning rate over the run: constant, or cyclic — a triangle from 0 up to `lr` at 2/5 of
     * the steps and back to 0 at the end, set every step (the schedule of fast adversarial
     * training, Wong et al. 2020, after Smith & Topin 2019's super-convergence).
     */
    lrSchedule: z.enum(['constant', 'cyclic']).default('constant'),
    /** L2 penalty (λ/2)·Σw² on kernels (not biases). */
    weightDecay: z.number().min(0).default(0),
    /** In [0, 1): at 1 every target is uniform and carries no label. */
    labelSmoothing: z.number().min(0).lt(1).default(0),
    /**
     * Gaussian data augmentation: train on x + N(0, σ²I), not clipped to bounds (the base
     * classifier of randomized smoothing, Cohen et al. 2019). Noise comes from the seeded Rng.
     */
    noiseSigma: z.number().min(0).default(0),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type TrainConfig = z.infer<typeof trainConfigSchema>;

export interface BatchProgress {
  epoch: number;
  batch: number;
  numBatches: number;
  /** Mean loss and accuracy over the epoch so far. */
  loss: number;
  accuracy: number;
  examplesPerSecond: number;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  seconds: number;
  [extra: string]: number;
}

/** Where training stands when a batch loss is evaluated, for schedules (eps ramps, ...). */
export interface TrainHooks {
  onBatch?: (p: BatchProgress) => void;
  /**
   * Called after each epoch; may add fields (e.g. test accuracy) to the record. Returning
   * 'stop' ends training after this epoch (early stopping).
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: most callbacks return nothing
  onEpoch?: (r: EpochRecord) => 'stop' | void | Promise<'stop' | void>;
  signal?: AbortSignal;
  lossFn?: LossFn;
  /** Computes a per-batch constant for `lossFn` outside the gradient tape (see PrepareFn). */
  prepare?: PrepareFn;
  /**
   * Worker pool for data-parallel steps (each batch split across its workers). Used when it has
   * two or more workers and either no custom `lossFn` is given or `parallelLoss` rebuilds it in
   * the workers.
   */
  pool?: WorkerPool;
  /** The custom `lossFn`/`prepare` as workers can rebuild them (see src/train/parallel.ts). */
  parallelLoss?: ParallelLoss;
  /**
   * Draws each step's batch and computes its update in place of the shuffled batches and the
   * loss gradient (see GradientStep); runs in-process, without `lossFn`, `prepare` or a pool.
   */
  gradientStep?: GradientStep;
}

export interface TrainResult {
  config: TrainConfig;
  epochs: EpochRecord[];
  seconds: number;
}

/** Plain cross-entropy on the model's training-mode logits. */
export function standardLoss(labelSmoothing: number): LossFn {
  return (model, x, labels) => {
    const logits = model.apply(x, { training: true }) as tf.Tensor2D;
    return { loss: smoothedCrossEntropy(logits, labels, labelSmoothing), logits };
  };
}

/** Trains `model` in place on `data`. Reads the loss from the backend every few batches only. */
export async function trainModel(
  model: tfl.LayersModel,
  data: Dataset,
  config: Partial<TrainConfig>,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const cfg = parseConfig(config);
  const rng = new Rng(cfg.seed);
  // Dropout masks come from their own stream (drawn only when the model has Dropout layers, so
  // runs without dropout keep their shuffles).
  const dropout = new DropoutSeeder(model.layers);
  const dropoutRng = dropout.size > 0 ? rng.fork() : undefined;
  const optimizer = makeOptimizer(cfg);
  const lossFn = hooks.lossFn ?? standardLoss(cfg.labelSmoothing);
  const custom = hooks.lossFn !== undefined || hooks.prepare !== undefined;
  const own = hooks.gradientStep;
  if (own && (custom || (hooks.pool && hooks.pool.size > 1))) {
    throw new ParryError(
      'BAD_OPTION',
      'train: a gradientStep computes its own gradients in-process; omit lossFn, prepare and the pool',
    );
  }
  if (custom && !hooks.parallelLoss && hooks.pool && hooks.pool.size > 1) {
    throw new ParryError(
      'BAD_OPTION',
      'train: a custom lossFn without a parallelLoss runs in-process only; omit the pool',
    );
  }
  const parallel =
    hooks.pool && hooks.pool.size > 1
      ? new ParallelStep(
          hooks.pool,
          model,
          cfg.labelSmoothing,
          custom ? hooks.parallelLoss : undefined,
        )
      : undefined;
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = model.trainableWeights.filter((w) => /kernel/.test(w.name)).map((w) => w.read());
  const n = data.shape[0];
  const per = exampleSize(data);
  const numBatches = Math.ceil(n / cfg.batchSize);
  const epochs: EpochRecord[] = [];
  const started = performance.now();
  let xBatch = new Float32Array(cfg.batchSize * per);
  let yBatch = new Int32Array(cfg.batchSize);

  try {
    for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
      const epochStart = performance.now();
      // A gradientStep draws its own batches (and leaves the loop's stream alone).
      const order = own ? undefined : rng.permutation(n);
      let lossSum = tf.scalar(0);
      let correctSum = tf.scalar(0, 'int32');
      let seen = 0;
      for (let b = 0; b < numBatches; b++) {
        if (hooks.signal?.aborted) {
          tf.dispose([lossSum, correctSum]);
          throw new ParryError('INTERNAL', 'train: aborted');
        }
        const progress = {
          step: (epoch - 1) * numBatches + b,
          totalSteps: cfg.epochs * numBatches,
        };
        const picked = own?.sample(n, progress);
        const m = picked ? picked.length : Math.min(cfg.batchSize, n - b * cfg.batchSize);
        if (m > yBatch.length) {
          xBatch = new Float32Array(m * per);
          yBatch = new Int32Array(m);
        }
        for (let i = 0; i < m; i++) {
          const j = picked ? picked[i] : order![b * cfg.batchSize + i];
          xBatch.set(data.x.subarray(j * per, (j + 1) * per), i * per);
          yBatch[i] = data.labels[j];
        }
        if (cfg.noiseSigma > 0) {
          for (let i = 0; i < m * per; i++) xBatch[i] += cfg.noiseSigma * rng.normal();
        }
        const shape = [m, ...data.shape.slice(1)];
        const batchLoss: BatchLoss = (net, x, y) => {
          const prepared = hooks.prepare?.(net, x, y, progress);
          return (inner) => lossFn(net, inner.x, inner.y, progress, prepared);
        };
        if (cfg.lrSchedule !== 'constant')
          setLearningRate(optimizer, learningRateAt(cfg, progress.step, progress.totalSteps));
        const xs = xBatch.subarray(0, m * per);
        const ys = yBatch.subarray(0, m);
        if (dropoutRng && !parallel) dropout.seed(dropoutRng.nextSeed());
        const [loss, correct] = parallel
          ? await parallelStep(
              parallel,
              optimizer,
              kernels,
              cfg.weightDecay,
              xs,
              ys,
              shape,
              progress,
              dropoutRng,
            )
          : own
            ? ownStep(own, model, optimizer, kernels, cfg.weightDecay, { xs, ys, shape }, progress)
            : localStep(model, optimizer, batchLoss, vars, kernels, cfg.weightDecay, xs, ys, shape);
        const [newLoss, newCorrect] = tf.tidy(() => [
          tf.add(lossSum, tf.mul(loss, m)),
          tf.add(correctSum, correct),
        ]);
        tf.dispose([loss, correct]);
        lossSum.dispose();
        correctSum.dispose();
        lossSum = newLoss;
        correctSum = newCorrect;
        seen += m;
        if (hooks.onBatch && (b % 10 === 9 || b === numBatches - 1)) {
          const secs = (performance.now() - epochStart) / 1000;
          hooks.onBatch({
            epoch,
            batch: b + 1,
            numBatches,
            loss: (await lossSum.data())[0] / seen,
            accuracy: (await correctSum.data())[0] / seen,
            examplesPerSecond: seen / secs,
          });
          // Let timers run (progress redraws, abort signals): on wasm every await above
          // resolves as a microtask and would otherwise starve the event loop.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const record: EpochRecord = {
        epoch,
        loss: (await lossSum.data())[0] / seen,
        accuracy: (await correctSum.data())[0] / seen,
        seconds: (performance.now() - epochStart) / 1000,
      };
      lossSum.dispose();
      correctSum.dispose();
      const verdict = await hooks.onEpoch?.(record);
      epochs.push(record);
      if (verdict === 'stop') break;
    }
  } finally {
    disposeOptimizer(optimizer);
    dropout.restore();
    // The sessions adversarial training's crafting ran on, if any.
    releaseCraftingEngine(model);
  }
  return { config: cfg, epochs, seconds: (performance.now() - started) / 1000 };
}

type Step = [loss: tf.Scalar, correct: tf.Scalar];
/**
 * A LossFn bound to one step's progress: called once outside the tape (to run `prepare`), it
 * returns the loss to record inside it.
 */
type BatchLoss = (
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
) => (batch: { x: tf.Tensor; y: tf.Tensor1D }) => ReturnType<LossFn>;

/** L2 penalty (λ/2)·Σ‖w‖² over the kernels. */
function weightPenalty(kernels: tf.Tensor[], weightDecay: number): tf.Scalar {
  return tf.mul(tf.addN(kernels.map((w) => tf.sum(tf.square(w)))), weightDecay / 2);
}

/** One optimizer step in this thread; returns the batch's mean loss and its correct count. */
function localStep(
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  lossFn: BatchLoss,
  vars: tf.Variable[],
  kernels: tf.Tensor[],
  weightDecay: number,
  xs: Float32Array,
  ys: Int32Array,
  shape: number[],
): Step {
  return tf.tidy(() => {
    const x = tf.tensor(xs, shape);
    const y = tf.tensor1d(ys, 'int32');
    let correct: tf.Scalar | undefined;
    const recordLoss = lossFn(model, x, y);
    const loss = optimizer.minimize(
      () => {
        const out = recordLoss({ x, y });
        correct = tf.keep(countCorrect(out.logits, y));
        const mean = tf.mean(out.loss) as tf.Scalar;
        return weightDecay > 0 ? tf.add(mean, weightPenalty(kernels, weightDecay)) : mean;
      },
      true,
      vars,
    ) as tf.Scalar;
    return [loss, correct!];
  });
}

/**
 * One optimizer step on a GradientStep's update (weight decay added to the kernels' gradients, as
 * in the data-parallel step); returns the batch's mean loss (0 for an empty batch) and its
 * correct count.
 */
function ownStep(
  own: GradientStep,
  model: tfl.LayersModel,
  optimizer: tf.Optimizer,
  kernels: tf.Tensor[],
  weightDecay: number,
  batch: { xs: Float32Array; ys: Int32Array; shape: number[] },
  progress: TrainProgress,
): Step {
  const m = batch.shape[0];
  const out = tf.tidy(() =>
    own.gradients(
      model,
      tf.tensor(batch.xs, batch.shape),
      tf.tensor1d(batch.ys, 'int32'),
      progress,
    ),
  );
  const names = new Map(kernels.map((k) => [(k as tf.Variable).name, k]));
  const step = tf.tidy((): Step => {
    const withDecay: tf.NamedTensorMap = {};
    for (const [name, g] of Object.entries(out.grads)) {
      const w = names.get(name);
      withDecay[name] = weightDecay > 0 && w ? tf.add(g, tf.mul(w, weightDecay)) : g;
    }
    let loss: tf.Scalar = m > 0 ? tf.div(out.lossSum, m) : tf.scalar(0);
    if (weightDecay > 0) loss = tf.add(loss, weightPenalty(kernels, weightDecay));
    optimizer.applyGradients(withDecay);
    return [loss, tf.clone(out.correct)];
  });
  tf.dispose([...Object.values(out.grads), out.lossSum, out.correct]);
  return step;
}

/** One optimizer step with the batch split across the pool's workers. */
async function parallelStep(
  parallel: ParallelStep,
  optimizer: tf.Optimizer,
  kernels: tf.Tensor[],
  weightDecay: number,
  xs: Float32Array,
  ys: Int32Array,
  shape: number[],
  progress: TrainProgress,
  dropoutRng: Rng | undefined,
): Promise<Step> {
  const { grads, lossSum, correct } = await parallel.gradients(xs, ys, shape, progress, dropoutRng);
  const names = new Map(kernels.map((k) => [(k as tf.Variable).name, k]));
  const step = tf.tidy((): Step => {
    const withDecay: tf.NamedTensorMap = {};
    for (const [name, g] of Object.entries(grads)) {
      const w = names.get(name);
      withDecay[name] = weightDecay > 0 && w ? tf.add(g, tf.mul(w, weightDecay)) : g;
    }
    // Reading the penalty before the update matches the in-process step's loss.
    let loss: tf.Scalar = tf.scalar(lossSum / shape[0]);
    if (weightDecay > 0) loss = tf.add(loss, weightPenalty(kernels, weightDecay));
    optimizer.applyGradients(withDecay);
    return [loss, tf.scalar(correct, 'int32')];
  });
  tf.dispose(Object.values(grads));
  return step;
}

/** The learning rate of step `step` (0-based) of `totalSteps` under `cfg.lrSchedule`. */
export function learningRateAt(
  cfg: Pick<TrainConfig, 'lr' | 'lrSchedule'>,
  step: number,
  totalSteps: number,
): number {
  if (cfg.lrSchedule === 'constant') return cfg.lr;
  // The step's position at its end, as Wong et al. set lr(epoch + (i + 1) / batches).
  const t = Math.min(1, (step + 1) / totalSteps);
  const peak = 0.4;
  return t <= peak ? (cfg.lr * t) / peak : (cfg.lr * (1 - t)) / (1 - peak);
}

/**
 * Disposes an optimizer and its state. tfjs's MomentumOptimizer.dispose frees its momentum and
 * accumulators but not the learning-rate scalar it inherits from SGD: one tensor per run.
 */
function disposeOptimizer(optimizer: tf.Optimizer): void {
  optimizer.dispose();
  const c = (optimizer as unknown as { c?: tf.Tensor }).c;
  if (optimizer instanceof tf.MomentumOptimizer && c && !c.isDisposed) c.dispose();
}

/** Sets a tfjs optimizer's learning rate between steps (Adam reads its field at every step). */
function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as {
    setLearningRate?: (lr: number) => void;
    learningRate: number;
  };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

export function parseConfig(config: Partial<TrainConfig>): TrainConfig {
  return parseWith('train', trainConfigSchema, config);
}

function makeOptimizer(cfg: TrainConfig): tf.Optimizer {
  switch (cfg.optimizer) {
    case 'adam':
      return tf.train.adam(cfg.lr);
    case 'sgd':
      return tf.train.sgd(cfg.lr);
    case 'momentum':
      return tf.train.momentum(cfg.lr, 0.9);
  }
}
