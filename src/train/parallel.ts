/**
 * Data-parallel training steps over a worker pool (synchronous SGD). Each step the caller's
 * current weights go to every worker with a shard of the batch; each worker returns the gradient
 * of the summed loss over its shard; the caller adds the shards' gradients in shard order, divides
 * by the batch size and lets its optimizer apply them. The result equals a single-thread step up
 * to float rounding (dropout masks excepted: each shard draws its own, from a seed the caller
 * draws per shard and step).
 *
 * A custom batch loss (robust training) crosses the thread boundary as a `ParallelLoss`: a
 * compiled module exporting a factory, and a plain config per shard. Each worker builds the loss
 * from it, runs its `prepare` hook (the attack crafting the shard's adversarial examples) outside
 * the gradient tape and differentiates the loss, exactly as the in-process step does. Random
 * draws (attack starts) then come from a per-shard seed, so a run is reproducible for a given
 * number of workers but not equal to the single-thread run.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { compiledModuleUrl } from '../engine/paths.js';
import type { WorkerPool } from '../engine/pool.js';
import type { Rng } from '../engine/rng.js';
import { type ModuleTask, moduleTask, type TaskContext } from '../engine/tasks.js';
import { ParryError } from '../errors.js';
import { DropoutSeeder } from '../models/dropout.js';
import { countCorrect, smoothedCrossEntropy } from '../objectives/losses.js';
import type { LossFn, PrepareFn, TrainProgress } from './steps.js';

/** What a `ParallelLoss` factory builds in a worker: the batch loss and its optional hook. */
export interface ShardLoss {
  prepare?: PrepareFn;
  lossFn: LossFn;
  /** Gradient evaluations per example so far (attack steps plus backward passes), if counted. */
  cost?: { perExample(): number };
}

/** A batch loss that can be rebuilt in a worker (see the module comment). */
export interface ParallelLoss {
  /** File URL of a compiled module exporting `name`: `(config) => ShardLoss`. */
  module: string;
  name: string;
  /** The factory's plain (structured-cloneable) config for one shard of one step. */
  configFor: (progress: TrainProgress, shard: number) => unknown;
  /** Receives each step's example count and the gradient evaluations its shards reported. */
  onCost?: (examples: number, gradientEvaluations: number) => void;
}

export interface GradientShardInput {
  /** `model.toJSON()` of the model being trained; workers build it once and cache it. */
  topology: string;
  /** Current values of the trainable weights, in `model.trainableWeights` order. */
  weights: Float32Array[];
  x: Float32Array;
  shape: number[];
  labels: Int32Array;
  labelSmoothing: number;
  /** Seed of the shard's dropout masks (models with Dropout layers). */
  dropoutSeed?: number;
  /** A custom loss in place of cross-entropy: the factory module, export and its config. */
  loss?: { module: string; name: string; config: unknown; progress: TrainProgress };
}

export interface GradientShardOutput {
  /** Gradients of the summed (not mean) loss, in `trainableWeights` order. */
  grads: Float32Array[];
  lossSum: number;
  correct: number;
  /** Gradient evaluations spent on the shard (custom losses that count them; else 0). */
  gradientEvaluations: number;
}

/** Builds a shard's custom loss from its module (imported once per worker). */
async function shardLoss(spec: NonNullable<GradientShardInput['loss']>): Promise<ShardLoss> {
  const mod = (await import(spec.module)) as Record<string, unknown>;
  const factory = mod[spec.name];
  if (typeof factory !== 'function')
    throw new ParryError(
      'INTERNAL',
      `train: ${spec.module} does not export a loss factory '${spec.name}'`,
    );
  return (factory as (config: unknown) => ShardLoss)(spec.config);
}

/** Worker side: gradient of the summed loss over one shard (the pool task of `gradientShardTask()`). */
export async function gradientShard(
  input: GradientShardInput,
  ctx: TaskContext,
): Promise<GradientShardOutput> {
  const key = `train:${input.topology}`;
  let model = ctx.cache.get(key) as tfl.LayersModel | undefined;
  if (model === undefined) {
    model = (await tfl.models.modelFromJSON(JSON.parse(input.topology))) as tfl.LayersModel;
    ctx.cache.set(key, model);
  }
  const m = model;
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  vars.forEach((v, i) => {
    tf.tidy(() => v.assign(tf.tensor(input.weights[i], v.shape)));
  });
  if (input.dropoutSeed !== undefined) new DropoutSeeder(m.layers).seed(input.dropoutSeed);
  const custom = input.loss ? await shardLoss(input.loss) : undefined;
  const progress = input.loss?.progress ?? { step: 0, totalSteps: 1 };
  const { value, grads, correct } = tf.tidy(() => {
    const x = tf.tensor(input.x, input.shape);
    const y = tf.tensor1d(input.labels, 'int32');
    // Outside the tape, as in the in-process step: the attack's iterates are constants.
    const prepared = custom?.prepare?.(m, x, y, progress);
    let kept: tf.Scalar | undefined;
    const r = tf.variableGrads(() => {
      if (custom) {
        const out = custom.lossFn(m, x, y, progress, prepared);
        kept = tf.keep(countCorrect(out.logits, y));
        return tf.sum(out.loss) as tf.Scalar;
      }
      const logits = m.apply(x, { training: true }) as tf.Tensor2D;
      kept = tf.keep(countCorrect(logits, y));
      return tf.sum(smoothedCrossEntropy(logits, y, input.labelSmoothing)) as tf.Scalar;
    }, vars);
    return { ...r, correct: kept! };
  });
  const out: GradientShardOutput = {
    grads: vars.map((v) => grads[v.name].dataSync().slice() as Float32Array),
    lossSum: value.dataSync()[0],
    correct: correct.dataSync()[0],
    gradientEvaluations: (custom?.cost?.perExample() ?? 0) * input.shape[0],
  };
  tf.dispose([value, correct, ...Object.values(grads)]);
  return out;
}

/** Caller side: one step over `workers` shards of the batch; applies the mean gradient. */
export class ParallelStep {
  private readonly topology: string;

  constructor(
    private readonly pool: WorkerPool,
    private readonly model: tfl.LayersModel,
    private readonly labelSmoothing: number,
    private readonly loss?: ParallelLoss,
  ) {
    this.topology = JSON.stringify(model.toJSON(null, false));
  }

  /** Gradients averaged over the batch, keyed by variable name (caller disposes), plus stats. */
  async gradients(
    x: Float32Array,
    labels: Int32Array,
    shape: number[],
    progress: TrainProgress = { step: 0, totalSteps: 1 },
    dropoutRng?: Rng,
  ): Promise<{ grads: tf.NamedTensorMap; lossSum: number; correct: number }> {
    const vars = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const weights = vars.map((v) => v.dataSync() as Float32Array);
    const m = shape[0];
    const per = x.length / m;
    const shards = Math.min(this.pool.size || 1, m);
    const inputs: GradientShardInput[] = [];
    for (let s = 0; s < shards; s++) {
      const start = Math.floor((s * m) / shards);
      const end = Math.floor(((s + 1) * m) / shards);
      inputs.push({
        topology: this.topology,
        weights,
        x: x.slice(start * per, end * per),
        shape: [end - start, ...shape.slice(1)],
        labels: labels.slice(start, end),
        labelSmoothing: this.labelSmoothing,
        ...(dropoutRng ? { dropoutSeed: dropoutRng.nextSeed() } : {}),
        ...(this.loss
          ? {
              loss: {
                module: this.loss.module,
                name: this.loss.name,
                config: this.loss.configFor(progress, s),
                progress,
              },
            }
          : {}),
      });
    }
    const outs = await this.pool.map(gradientShardTask(), inputs);
    this.loss?.onCost?.(
      m,
      outs.reduce((sum, o) => sum + o.gradientEvaluations, 0),
    );
    const grads: tf.NamedTensorMap = {};
    vars.forEach((v, i) => {
      const total = new Float32Array(outs[0].grads[i].length);
      for (const o of outs) {
        const g = o.grads[i];
        for (let j = 0; j < total.length; j++) total[j] += g[j];
      }
      for (let j = 0; j < total.length; j++) total[j] /= m;
      grads[v.name] = tf.tensor(total, v.shape);
    });
    return {
      grads,
      lossSum: outs.reduce((s, o) => s + o.lossSum, 0),
      correct: outs.reduce((s, o) => s + o.correct, 0),
    };
  }
}

/** `gradientShard` as a task for `WorkerPool.map`. */
export function gradientShardTask(): ModuleTask<GradientShardInput, GradientShardOutput> {
  return moduleTask(compiledModuleUrl(import.meta.url), 'gradientShard');
}
