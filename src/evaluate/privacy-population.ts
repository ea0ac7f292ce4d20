/**
 * How the models of a membership-inference evaluation train: the recipe every model shares
 * (plain, a robust training method of the registry, or DP-SGD), and the population trained as one
 * job per model on an executor — the worker pool's threads, or the job queue's workers on other
 * machines — so that K reference models train K at a time.
 *
 * Each job trains its model in one thread from its seed and sends back the weights; the caller
 * rebuilds the model. The same computation runs whatever runs the job (a worker thread, a queue
 * worker, or this thread when no executor is given), so the results do not depend on it.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  type MemberJob,
  type PopulationConfig,
  type PopulationRecipe,
  type TrainedMember,
  trainMember,
} from '../attacks/privacy/reference-models.js';
import type { Dataset } from '../data/dataset.js';
import { createDpSgd } from '../defenses/privacy/dp-sgd.js';
import { TRAINING_METHODS } from '../defenses/training/registry.js';
import { type RobustOptions, robustRun } from '../defenses/training/robust-training.js';
import { compiledModuleUrl } from '../engine/paths.js';
import type { WorkerPool } from '../engine/pool.js';
import { type ModuleTask, moduleTask, type TaskContext } from '../engine/tasks.js';
import { ParryError } from '../errors.js';
import { buildArchitecture } from '../models/architectures.js';
import { findEntry, parseEntryOptions } from '../options.js';
import type { PopulationTraining } from './privacy-config.js';

type Recipe = (model: tfl.LayersModel, data: Dataset, seed: number) => PopulationRecipe;

/**
 * The recipe every model of the population trains with: `undefined` for plain training, else a
 * training method's robust loss or DP-SGD's gradient step, seeded per model. The method and its
 * options are checked here, before any training.
 */
export function populationRecipe(t: PopulationTraining, batchSize: number): Recipe | undefined {
  const entry = findEntry(TRAINING_METHODS, t.defense, 'training method');
  if (entry.kind === 'ibp')
    throw new ParryError(
      'BAD_OPTION',
      `privacy: training method '${t.defense}' is not supported for the population (plain, robust or DP-SGD training only)`,
    );
  const options = parseEntryOptions(entry, t.params);
  const dp = t.dp;
  if (dp) {
    return (model, data, seed) => {
      const run = createDpSgd(model, { ...dp, seed }, { examples: data.shape[0], batchSize });
      return {
        hooks: { gradientStep: run.step },
        record: () => ({ defense: 'dp-sgd', ...run.record() }),
      };
    };
  }
  if (entry.kind === 'plain') return undefined;
  return (model, data, seed) => {
    const run = robustRun(
      entry,
      { ...options, seed } as RobustOptions,
      model,
      { data, name: data.name },
      [0, 1],
    );
    return {
      hooks: { lossFn: run.lossFn, prepare: run.prepare, parallelLoss: run.parallelLoss },
      record: () => ({ defense: t.defense, ...(run.record[t.defense] as object) }),
    };
  };
}

/** One model's job: its half of the pool, the population's config, its seed, the recipe. */
export interface MemberTaskInput {
  name: string;
  x: Float32Array;
  shape: number[];
  labels: Int32Array;
  numClasses: number;
  config: PopulationConfig;
  seed: number;
  training: PopulationTraining;
}

/** The trained weights in `model.getWeights()` order, with what the training recorded. */
export interface MemberTaskOutput {
  weights: Float32Array[];
  shapes: number[][];
  seconds: number;
  record: Record<string, unknown>;
}

/** Worker side: trains one model of the population in this thread and returns its weights. */
export async function trainMemberJob(
  input: MemberTaskInput,
  ctx: TaskContext,
): Promise<MemberTaskOutput> {
  const { name, x, shape, labels, numClasses, config, seed, training } = input;
  const data: Dataset = { name, x, shape, labels, numClasses };
  const t = await trainMember(data, config, seed, {
    recipe: populationRecipe(training, config.batchSize),
    onProgress: ctx.progress,
  });
  try {
    const values = t.model.getWeights();
    return {
      weights: values.map((w) => Float32Array.from(w.dataSync())),
      shapes: values.map((w) => w.shape.slice()),
      seconds: t.seconds,
      record: t.record,
    };
  } finally {
    t.model.dispose();
  }
}

export function memberTask(): ModuleTask<MemberTaskInput, MemberTaskOutput> {
  return moduleTask(compiledModuleUrl(import.meta.url), 'trainMemberJob');
}

/**
 * `trainPopulation`'s `trainMembers` on an executor: one job per model, results in job order,
 * models rebuilt here from their weights. `onProgress` hears models done (fractions included).
 */
export function trainMembersOn(
  executor: WorkerPool,
  training: PopulationTraining,
  ctx: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): (jobs: MemberJob[], config: PopulationConfig) => Promise<TrainedMember[]> {
  return async (jobs, config) => {
    // The recipe is checked before any job leaves.
    populationRecipe(training, config.batchSize);
    const inputs: MemberTaskInput[] = jobs.map((j) => ({
      name: j.data.name,
      x: j.data.x,
      shape: j.data.shape,
      labels: j.data.labels,
      numClasses: j.data.numClasses,
      config,
      seed: j.seed,
      training,
    }));
    const outputs = await executor.map(memberTask(), inputs, {
      signal: ctx.signal,
      onProgress: ctx.onProgress,
    });
    const trained: TrainedMember[] = [];
    try {
      for (const [i, out] of outputs.entries()) {
        const job = jobs[i];
        const model = buildArchitecture(config.arch, {
          inputShape: job.data.shape.slice(1),
          numClasses: job.data.numClasses,
          seed: job.seed,
        });
        trained.push({ model, seconds: out.seconds, record: out.record });
        const tensors = out.weights.map((w, k) => tf.tensor(w, out.shapes[k]));
        try {
          model.setWeights(tensors);
        } finally {
          tf.dispose(tensors);
        }
      }
    } catch (e) {
      for (const t of trained) t.model.dispose();
      throw e;
    }
    return trained;
  };
}
