/**
 * The models' pool tasks: a forward pass of a saved classifier, and the per-worker model cache
 * every feature's task loads its model through. The engine knows none of this; a feature hands
 * `forwardTask()` (a module task) to the pool.
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../engine/backend.js';
import { compiledModuleUrl } from '../engine/paths.js';
import { type BatchInput, type ModuleTask, moduleTask, type TaskContext } from '../engine/tasks.js';
import type { Classifier } from './classifier.js';
import { loadClassifier } from './load.js';

export interface ForwardInput extends BatchInput {
  /** Directory of a model `loadClassifier` can read. */
  modelDir: string;
  /** Backend for this job; defaults to the pool's. */
  backend?: string;
}

/** Logits `[batch, numClasses]` (row-major) of the classifier in `modelDir`, loaded once per worker. */
export async function forward(input: ForwardInput, ctx: TaskContext): Promise<Float32Array> {
  if (input.backend !== undefined && input.backend !== tf.getBackend()) {
    await initBackend(input.backend);
  }
  const m = await cachedClassifier(input.modelDir, ctx);
  return readAndDispose(tf.tidy(() => m.logits(tf.tensor(input.x, input.shape))));
}

/** `forward` as a task for `WorkerPool.map` / `mapBatches`. */
export function forwardTask(): ModuleTask<ForwardInput, Float32Array> {
  return moduleTask(compiledModuleUrl(import.meta.url), 'forward');
}

/** The classifier in `modelDir`, loaded once per worker and backend (kept in `ctx.cache`). */
export async function cachedClassifier(modelDir: string, ctx: TaskContext): Promise<Classifier> {
  const key = `classifier:${tf.getBackend()}:${modelDir}`;
  let model = ctx.cache.get(key) as Classifier | undefined;
  if (model === undefined) {
    model = await loadClassifier(modelDir);
    ctx.cache.set(key, model);
  }
  return model;
}

/** Reads a tensor outside any tidy (DESIGN.md: tidy walks returned arrays) and frees it. */
export async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}
