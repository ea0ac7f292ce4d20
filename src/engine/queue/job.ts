/**
 * What a queued job holds, and its key. A job is a pure function of its content — the task, the
 * encoded input with every model replaced by its content hash, the seed and the parry version —
 * so its BullMQ jobId is the sha256 of that content: the same work asked for twice (a retry, a
 * duplicate, a restarted coordinator) is one job and one result. The label (which cell, which
 * batch) is for messages only and is not hashed.
 *
 * Tasks travel as paths inside parry's package (`dist/src/evaluate/robustness.js#attackBatchJob`),
 * so a worker installed elsewhere finds its own copy; a task outside the package cannot be queued,
 * and a worker imports nothing from outside its own package.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ParryError } from '../../errors.js';
import { packageRoot } from '../paths.js';
import { checkTask, type TaskSpec } from '../tasks.js';
import { type AssetRef, isAssetRef } from './assets.js';
import { canonicalJson, sha256 } from './codec.js';

/** A task as a job names it: a built-in task's name, or a module inside parry's package. */
export type JobTask = string | { module: string; name: string };

/**
 * What besides the input decides a result's last digits: the tfjs backend and the model engine
 * ($PARRY_ENGINE: auto, ort, tfjs). A worker whose own differ refuses the job.
 */
export interface JobRuntime {
  backend: string;
  engine: string;
}

/** This process's model engine choice ($PARRY_ENGINE, default auto). */
export const engineSetting = (): string => process.env.PARRY_ENGINE || 'auto';

export interface JobData {
  /** Format of this record. */
  format: 1;
  /** parry version of the coordinator; a worker of another version refuses the job. */
  parry: string;
  task: JobTask;
  runtime: JobRuntime;
  seed?: number;
  /** The task's input through `encodeValue`, with paths replaced by `AssetRef`s. */
  input: unknown;
  /** For messages: the cell and batch (`fmnist-mlp: fgsm linf 0.1 · batch 2/4`). */
  label: string;
}

export const JOB_FORMAT = 1;

let version: string | undefined;

/** This parry's version (package.json). */
export function parryVersion(): string {
  version ??= (
    JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;
  return version;
}

/** `task` as a job names it; refuses a module outside parry's package. */
export function portableTask(task: TaskSpec): JobTask {
  checkTask(task);
  if (typeof task === 'string') return task;
  const file = fileURLToPath(task.module);
  const rel = path.relative(packageRoot(), file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new ParryError(
      'BAD_OPTION',
      `queue: task ${task.name} lives in ${file}, outside parry's package (${packageRoot()}); ` +
        'only parry\u2019s own tasks can be queued',
    );
  }
  return { module: rel.split(path.sep).join('/'), name: task.name };
}

/** The task a job names, in this worker's own package. */
export function localTask(task: JobTask): TaskSpec {
  if (typeof task === 'string') return task as TaskSpec;
  const parts = task.module.split('/');
  if (path.isAbsolute(task.module) || parts.includes('..') || !/\.m?js$/.test(task.module)) {
    throw new ParryError(
      'BAD_INPUT',
      `queue: refused: task module '${task.module}' is not a compiled module inside parry's package`,
    );
  }
  return { module: pathToFileURL(path.join(packageRoot(), ...parts)).href, name: task.name };
}

/** The input as hashed: assets by content only (the path they were read from is not content). */
function identity(input: unknown): unknown {
  if (isAssetRef(input)) return { $asset: input.$asset, kind: input.kind };
  if (Array.isArray(input)) return input.map(identity);
  if (input !== null && typeof input === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(input)) out[k] = identity(v);
    return out;
  }
  return input;
}

/** The job's key: sha256 of everything that decides its result. */
export function jobKey(
  data: Pick<JobData, 'parry' | 'task' | 'runtime' | 'seed' | 'input'>,
): string {
  return sha256(
    canonicalJson({
      format: JOB_FORMAT,
      parry: data.parry,
      task: data.task,
      runtime: { backend: data.runtime.backend, engine: data.runtime.engine },
      seed: data.seed ?? null,
      input: identity(data.input),
    }),
  );
}

/** The asset references among an encoded input's top-level fields. */
export function assetsOf(input: unknown): [string, AssetRef][] {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return [];
  return Object.entries(input).filter((e): e is [string, AssetRef] => isAssetRef(e[1]));
}
