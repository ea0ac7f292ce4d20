/**
 * Tasks a `WorkerPool` runs. A task is a function `(input, ctx) => output` whose input and output
 * are structured-cloneable (numbers, strings, plain objects, typed arrays). It runs either in a
 * worker thread or, for an in-process pool, in the caller's thread: its result must depend only
 * on `input` and `ctx.rng`, never on which worker ran it or what ran there before (`ctx.cache`
 * may only hold things that are pure functions of their key, like a loaded model).
 *
 * Features give their tasks as a `ModuleTask` (a compiled JS module plus an exported function
 * name), so the engine knows no technique; `TASKS` holds only two trivial built-ins for tests.
 * A task must return arrays it owns: a worker transfers (moves) their buffers to the caller.
 */
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isParryError, ParryError, type ParryErrorCode } from '../errors.js';
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

/**
 * The built-in tasks, by name: only what tests the pool itself. Every feature's work comes as a
 * `ModuleTask` exported by the feature's own module (e.g. `forwardTask()` in models/pool-tasks.ts).
 */
export const TASKS = {
  echo,
  sum,
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
