/**
 * Randomized-smoothing certificates for a whole data set, one example at a time, in this thread or
 * across a worker pool. Each example's noise comes from its own generator, seeded by the i-th draw
 * of `new Rng(seed)`: in-process and pooled runs certify alike, whatever the scheduling.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Dataset, exampleSize } from '../data/index.js';
import { compiledModuleUrl } from '../engine/paths.js';
import type { WorkerPool } from '../engine/pool.js';
import { Rng } from '../engine/rng.js';
import { type ModuleTask, moduleTask, type TaskContext } from '../engine/tasks.js';
import type { Classifier } from '../models/classifier.js';
import { cachedClassifier } from '../models/pool-tasks.js';
import { type CertifyConfigInput, certify } from './randomized-smoothing.js';

export interface SmoothingRow {
  label: number;
  prediction: number;
  radius: number;
  pALower: number;
}

export interface SmoothingDatasetResult {
  rows: SmoothingRow[];
  /** Base-classifier forward passes per noisy example, summed (n0 + n per example). */
  forwardPasses: number;
}

export interface SmoothingDatasetOptions {
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** One example's certificate, as plain values (the pool task's input and output). */
export interface SmoothingJob {
  x: Float32Array;
  shape: number[];
  config: CertifyConfigInput;
  seed: number;
}

export interface SmoothingJobResult {
  prediction: number;
  radius: number;
  pALower: number;
  forwardPasses: number;
}

export async function certifyExample(
  model: Classifier,
  job: SmoothingJob,
): Promise<SmoothingJobResult> {
  const x = tf.tensor(job.x, job.shape);
  try {
    const r = await certify(model, x, job.config, new Rng(job.seed));
    return {
      prediction: r.prediction,
      radius: r.radius,
      pALower: r.pALower,
      forwardPasses: r.forwardPasses,
    };
  } finally {
    x.dispose();
  }
}

function jobs(
  data: Dataset,
  config: CertifyConfigInput,
  seed: number,
  copy: boolean,
): SmoothingJob[] {
  const per = exampleSize(data);
  const rng = new Rng(seed);
  return Array.from({ length: data.shape[0] }, (_, i) => {
    const view = data.x.subarray(i * per, (i + 1) * per);
    return {
      x: copy ? view.slice() : view,
      shape: data.shape.slice(1),
      config,
      seed: rng.nextUint32(),
    };
  });
}

function collect(data: Dataset, results: SmoothingJobResult[]): SmoothingDatasetResult {
  return {
    rows: results.map((r, i) => ({
      label: data.labels[i],
      prediction: r.prediction,
      radius: r.radius,
      pALower: r.pALower,
    })),
    forwardPasses: results.reduce((s, r) => s + r.forwardPasses, 0),
  };
}

/** Certifies every example of `data` in this thread. */
export async function certifySmoothingDataset(
  model: Classifier,
  data: Dataset,
  config: CertifyConfigInput,
  seed: number,
  opts: SmoothingDatasetOptions = {},
): Promise<SmoothingDatasetResult> {
  const results: SmoothingJobResult[] = [];
  const all = jobs(data, config, seed, false);
  for (const job of all) {
    opts.signal?.throwIfAborted();
    results.push(await certifyExample(model, job));
    opts.onProgress?.(results.length, all.length);
    // Give timers a turn (progress redraws): awaits on wasm data resolve as microtasks.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return collect(data, results);
}

/** Certifies every example of `data` across `pool`; each worker loads `modelDir` once. */
export async function certifySmoothingDatasetPooled(
  pool: WorkerPool,
  modelDir: string,
  data: Dataset,
  config: CertifyConfigInput,
  seed: number,
  opts: SmoothingDatasetOptions = {},
): Promise<SmoothingDatasetResult> {
  const results = await pool.map(
    smoothingCertifyTask(),
    jobs(data, config, seed, true).map((job) => ({ ...job, modelDir })),
    {
      transfer: (input) => [input.x.buffer as ArrayBuffer],
      onProgress: opts.onProgress,
      signal: opts.signal,
    },
  );
  return collect(data, results);
}

type PooledSmoothingJob = SmoothingJob & { modelDir: string };

/** Pool task: one randomized-smoothing certificate on `modelDir`'s model. */
export async function smoothingCertifyJob(
  input: PooledSmoothingJob,
  ctx: TaskContext,
): Promise<SmoothingJobResult> {
  return certifyExample(await cachedClassifier(input.modelDir, ctx), input);
}

/** `smoothingCertifyJob` as a task for `WorkerPool.map`. */
export function smoothingCertifyTask(): ModuleTask<PooledSmoothingJob, SmoothingJobResult> {
  return moduleTask(compiledModuleUrl(import.meta.url), 'smoothingCertifyJob');
}
