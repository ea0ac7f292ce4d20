/**
 * Tasks a `WorkerPool` runs. A task is a function `(input, ctx) => output` whose input and output
 * are structured-cloneable (numbers, strings, plain objects, typed arrays). It runs either in a
 * worker thread or, for an in-process pool, in the caller's thread: its result must depend only
 * on `input` and `ctx.rng`, never on which worker ran it or what ran there before (`ctx.cache`
 * may only hold things that are pure functions of their key, like a loaded model).
 *
 * Tasks are named in the explicit registry `TASKS`, or given as a `ModuleTask` (a compiled JS
 * module plus an exported function name) so features and tests can add tasks without editing it.
 * A task must return arrays it owns: a worker transfers (moves) their buffers to the caller.
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { isParryError, ParryError, type ParryErrorCode } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import { initBackend } from './backend.js';
import { Rng } from './rng.js';

export interface TaskContext {
  /** Present when the job was given a seed; derive per-job seeds with `rng.fork()` in the caller. */
  readonly rng?: Rng;
  /** Per-worker store kept across jobs (e.g. a model keyed by its directory). */
  readonly cache: Map<string, unknown>;
  /**
   * Reports how much of the job is done, in [0, 1], for a long job's progress bar; `map` adds it
   * to its count of finished jobs. Cheap to call often (a worker forwards at most a few per second).
   */
  readonly progress?: (fraction: number) => void;
}

/** A batch of examples: `x` holds `shape` (first axis = batch) in row-major order. */
export interface BatchInput {
  x: Float32Array;
  shape: number[];
}

export interface ForwardInput extends BatchInput {
  /** Directory of a model `loadClassifier` can read. */
  modelDir: string;
  /** Backend for this job; defaults to the pool's. */
  backend?: string;
}

export interface BenchConvInput extends BatchInput {
  /** Seed of the random weights (the same seed gives the same network in every worker). */
  seed?: number;
}

/** Returns its input (tests, and measuring the cost of a round trip). */
function echo<T>(input: T): T {
  return input;
}

/** Sum of the values (tests). */
function sum(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s;
}

/** Logits `[batch, numClasses]` (row-major) of the classifier in `modelDir`, loaded once per worker. */
async function forward(input: ForwardInput, ctx: TaskContext): Promise<Float32Array> {
  if (input.backend !== undefined && input.backend !== tf.getBackend()) {
    await initBackend(input.backend);
  }
  const m = await cachedClassifier(input.modelDir, ctx);
  const logits = tf.tidy(() => m.logits(tf.tensor(input.x, input.shape)));
  return readAndDispose(logits);
}

/** The classifier in `modelDir`, loaded once per worker and backend. */
async function cachedClassifier(modelDir: string, ctx: TaskContext): Promise<Classifier> {
  const key = `classifier:${tf.getBackend()}:${modelDir}`;
  let model = ctx.cache.get(key) as Classifier | undefined;
  if (model === undefined) {
    // Imported lazily: the loader pulls in tfjs-layers/-converter, which only model tasks need.
    const { loadClassifier } = await import('../models/load.js');
    model = await loadClassifier(modelDir);
    ctx.cache.set(key, model);
  }
  return model;
}

/**
 * One batch of an attack evaluation (src/evaluate/robustness.ts) on the model in `modelDir`,
 * behind its preprocessing chain when the input names one (built once per worker; the defended
 * model is seeded per batch).
 */
async function attackBatch(
  input: import('../evaluate/robustness.js').AttackBatchInput &
    import('../evaluate/robustness.js').PooledTarget,
  ctx: TaskContext,
): Promise<import('../evaluate/robustness.js').AttackBatchOutput> {
  const base = await cachedClassifier(input.modelDir, ctx);
  const { attackBatch: batch } = await import('../evaluate/robustness.js');
  const run = (model: Classifier) => batch(model, input, undefined, undefined, ctx.progress);
  if (input.preprocess === undefined) return run(base);
  const chain = await cachedPreprocessors(input.preprocess, ctx);
  const { preprocessAttacker } = await import('../adaptive/bpda.js');
  return run(preprocessAttacker(base, chain, input.adaptive ?? 'bpda', input.params.seed));
}

/**
 * Forward pass of a cnn-small-like network with seeded He-normal weights and no biases:
 * conv 3x3x32 + relu -> conv 3x3x64 + relu -> maxPool 2x2 -> dense 10. Input `[batch, h, w, c]`,
 * output logits `[batch, 10]`. Serves the pool's tests and benchmark without a trained model.
 */
async function benchConv(input: BenchConvInput, ctx: TaskContext): Promise<Float32Array> {
  const [, h, w, c] = input.shape;
  if (input.shape.length !== 4 || h < 6 || w < 6) {
    throw new ParryError(
      'BAD_INPUT',
      `benchConv: shape must be [batch, h, w, c] with h, w >= 6, got [${input.shape}]`,
    );
  }
  const seed = input.seed ?? 1;
  const key = `benchConv:${seed}:${h}x${w}x${c}`;
  let weights = ctx.cache.get(key) as tf.Tensor[] | undefined;
  if (weights === undefined) {
    const rng = new Rng(seed);
    const flat = Math.floor((h - 4) / 2) * Math.floor((w - 4) / 2) * 64;
    weights = [
      heNormal(rng, [3, 3, c, 32], 9 * c),
      heNormal(rng, [3, 3, 32, 64], 9 * 32),
      heNormal(rng, [flat, 10], flat),
    ];
    ctx.cache.set(key, weights);
  }
  const [w1, w2, w3] = weights as [tf.Tensor4D, tf.Tensor4D, tf.Tensor2D];
  const logits = tf.tidy(() => {
    const x = tf.tensor4d(input.x, input.shape as [number, number, number, number]);
    const a1 = tf.fused.conv2d({ x, filter: w1, strides: 1, pad: 'valid', activation: 'relu' });
    const a2 = tf.fused.conv2d({ x: a1, filter: w2, strides: 1, pad: 'valid', activation: 'relu' });
    const pooled = tf.maxPool(a2, 2, 2, 'valid');
    return tf.matMul(tf.reshape(pooled, [pooled.shape[0], -1]), w3);
  });
  return readAndDispose(logits);
}

function heNormal(rng: Rng, shape: number[], fanIn: number): tf.Tensor {
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  const scale = Math.sqrt(2 / fanIn);
  for (let i = 0; i < values.length; i++) values[i] = rng.normal() * scale;
  return tf.tensor(values, shape);
}

/** Reads a tensor outside any tidy (DESIGN.md: tidy walks returned arrays) and frees it. */
async function readAndDispose(t: tf.Tensor): Promise<Float32Array> {
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

/** One data-parallel training shard: gradients of the summed loss (src/train/parallel.ts). */
async function trainGradients(
  input: import('../train/parallel.js').GradientShardInput,
  ctx: TaskContext,
): Promise<import('../train/parallel.js').GradientShardOutput> {
  // Imported lazily: it pulls in tfjs-layers, which only training needs.
  const { gradientShard } = await import('../train/parallel.js');
  return gradientShard(input, ctx);
}

/** One batch of a preprocessing-defence evaluation (src/evaluate/defense.ts) on `modelDir`'s model. */
async function defenseBatch(
  input: import('../evaluate/defense.js').DefenseBatchInput &
    import('../evaluate/defense.js').PooledDefense,
  ctx: TaskContext,
): Promise<import('../evaluate/defense.js').DefenseBatchOutput> {
  const base = await cachedClassifier(input.modelDir, ctx);
  const chain = await cachedPreprocessors(input.preprocess, ctx);
  const { defenseBatch: run, defenseSetup } = await import('../evaluate/defense.js');
  const setup = defenseSetup(base, chain, input, input.params.seed);
  return run(setup, input, undefined, ctx.progress);
}

/** The preprocessing chain of `spec`, built once per worker (autoencoder steps load a model). */
async function cachedPreprocessors(
  spec: string,
  ctx: TaskContext,
): Promise<import('../defenses/preprocess/preprocessor.js').Preprocessor[]> {
  const key = `preprocess:${spec}`;
  let chain = ctx.cache.get(key) as
    | import('../defenses/preprocess/preprocessor.js').Preprocessor[]
    | undefined;
  if (chain === undefined) {
    const { buildPreprocessors } = await import('../defenses/preprocess/spec.js');
    chain = await buildPreprocessors(spec);
    ctx.cache.set(key, chain);
  }
  return chain;
}

/** One randomized-smoothing certificate (src/certify/smoothing-dataset.ts) on `modelDir`'s model. */
async function smoothingCertify(
  input: import('../certify/smoothing-dataset.js').SmoothingJob & { modelDir: string },
  ctx: TaskContext,
): Promise<import('../certify/smoothing-dataset.js').SmoothingJobResult> {
  const model = await cachedClassifier(input.modelDir, ctx);
  const { certifyExample } = await import('../certify/smoothing-dataset.js');
  return certifyExample(model, input);
}

/** The built-in tasks, by name. */
export const TASKS = {
  echo,
  sum,
  forward,
  benchConv,
  trainGradients,
  attackBatch,
  defenseBatch,
  smoothingCertify,
} satisfies Record<string, (input: never, ctx: TaskContext) => unknown>;

export type TaskName = keyof typeof TASKS;
export type TaskInput<K extends TaskName> = Parameters<(typeof TASKS)[K]>[0];
export type TaskOutput<K extends TaskName> = Awaited<ReturnType<(typeof TASKS)[K]>>;
export type TaskFn<I = never, O = unknown> = (input: I, ctx: TaskContext) => O | Promise<O>;

/**
 * A task exported by a compiled JS module: `module` is an absolute path or a file URL, `name` the
 * export. `I`/`O` only carry types (build one with `moduleTask<I, O>(...)`).
 */
export interface ModuleTask<I = unknown, O = unknown> {
  readonly module: string;
  readonly name: string;
  /** Type marker only; never set. */
  __types?(input: I): O;
}

export type TaskSpec = TaskName | ModuleTask<never, unknown>;
export type InputOf<T extends TaskSpec> = T extends TaskName
  ? TaskInput<T>
  : T extends ModuleTask<infer I, unknown>
    ? I
    : never;
export type OutputOf<T extends TaskSpec> = T extends TaskName
  ? TaskOutput<T>
  : T extends ModuleTask<never, infer O>
    ? O
    : never;

/** A typed `ModuleTask`; `module` is normalised to a file URL so every thread resolves it alike. */
export function moduleTask<I = unknown, O = unknown>(
  module: string,
  name: string,
): ModuleTask<I, O> {
  return { module: moduleUrl(module), name };
}

function moduleUrl(module: string): string {
  if (module.startsWith('file:')) return module;
  if (isAbsolute(module)) return pathToFileURL(module).href;
  throw new ParryError(
    'BAD_OPTION',
    `pool: a module task needs an absolute path or file URL, got '${module}'`,
  );
}

/** Name for messages: `sum`, or `file:///…/tasks.js#fail`. */
export function describeTask(task: TaskSpec): string {
  return typeof task === 'string' ? task : `${task.module}#${task.name}`;
}

/** Throws BAD_OPTION unless `task` names a built-in task or is a well-formed module task. */
export function checkTask(task: TaskSpec): void {
  if (typeof task === 'string') {
    if (!Object.hasOwn(TASKS, task)) {
      throw new ParryError(
        'BAD_OPTION',
        `pool: unknown task '${task}' (known: ${Object.keys(TASKS).join(', ')})`,
      );
    }
    return;
  }
  if (task === null || typeof task !== 'object' || typeof task.name !== 'string') {
    throw new ParryError('BAD_OPTION', `pool: a task is a name or {module, name}, got ${task}`);
  }
  moduleUrl(task.module);
}

/** The function behind a task spec (imports a module task's file on first use). */
export async function resolveTask(task: TaskSpec): Promise<TaskFn<unknown>> {
  checkTask(task);
  if (typeof task === 'string') return TASKS[task] as TaskFn<unknown>;
  const mod = (await import(moduleUrl(task.module))) as Record<string, unknown>;
  const fn = mod[task.name];
  if (typeof fn !== 'function') {
    throw new ParryError(
      'BAD_OPTION',
      `pool: ${task.module} does not export a function '${task.name}'`,
    );
  }
  return fn as TaskFn<unknown>;
}

/** Runs one job; the worker and the in-process pool both go through here. */
export async function executeTask(
  task: TaskSpec,
  input: unknown,
  seed: number | undefined,
  cache: Map<string, unknown>,
  progress?: (fraction: number) => void,
): Promise<unknown> {
  const fn = await resolveTask(task);
  return fn(input, { rng: seed === undefined ? undefined : new Rng(seed), cache, progress });
}

/** The (non-shared) ArrayBuffers reachable from `value` through arrays and plain objects. */
export function collectTransferables(value: unknown): ArrayBuffer[] {
  const found = new Set<ArrayBuffer>();
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object' || seen.has(v)) return;
    seen.add(v);
    if (v instanceof ArrayBuffer) found.add(v);
    else if (ArrayBuffer.isView(v)) {
      if (v.buffer instanceof ArrayBuffer) found.add(v.buffer);
    } else if (Array.isArray(v)) for (const item of v) walk(item);
    else if (Object.getPrototypeOf(v) === Object.prototype)
      for (const item of Object.values(v)) walk(item);
  };
  walk(value);
  return [...found];
}

/** An error as it crosses a thread boundary (structured clone drops `code` and the class). */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, stack: e.stack, code };
  }
  return { name: 'Error', message: String(e) };
}

/** Rebuilds a worker's error: a ParryError stays one (same code); other errors keep name and code. */
export function deserializeError(s: SerializedError): Error {
  const e: Error & { code?: unknown } =
    s.name === 'ParryError' && typeof s.code === 'string'
      ? new ParryError(s.code as ParryErrorCode, s.message)
      : new Error(s.message);
  if (!isParryError(e)) {
    e.name = s.name;
    if (s.code !== undefined) e.code = s.code;
  }
  if (s.stack !== undefined) e.stack = s.stack;
  return e;
}
