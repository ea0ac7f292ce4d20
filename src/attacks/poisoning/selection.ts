/**
 * What every poisoning attack shares: how many examples a rate poisons, which ones (drawn from a
 * seeded generator), the run context, and the errors that name an option. Nothing here touches
 * tensors.
 */
import { z } from 'zod';
import { checkDataset, type Dataset, selectExamples } from '../../data/dataset.js';
import type { Rng } from '../../engine/rng.js';
import type { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { optionsError } from '../../options.js';

/** What a poisoning runner may be given besides the training set. */
export interface PoisonContext {
  /** The reference (surrogate) model: adversarial flips, clean-label, feature collision, gradient matching. */
  model?: Classifier;
  /** The test split the target images of feature collision and gradient matching index into. */
  test?: Dataset;
  /**
   * A trigger image — data, not an option: `[size, size, c]` for a patch with pattern 'image',
   * `[h, w, c]` for a blend with blendPattern 'image' (e.g. read from a PNG by the CLI).
   */
  pattern?: Float32Array;
  signal?: AbortSignal;
  /** Hears how much of the crafting is done, in [0, 1]. */
  progress?: (fraction: number) => void;
}

/** A BAD_OPTION of `owner` naming `option`: `badnets: patchSize: 30 is larger than ...`. */
export function optionError(owner: string, option: string, message: string): ParryError {
  return optionsError(owner, [{ path: [option], message }]);
}

/** Examples a rate poisons: `round(rate · n)`. */
export function poisonCount(rate: number, n: number): number {
  return Math.round(rate * n);
}

/** Indices `i` (ascending) whose label satisfies `keep`. */
export function indicesWhere(labels: Int32Array, keep: (label: number) => boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < labels.length; i++) if (keep(labels[i])) out.push(i);
  return out;
}

/**
 * `count` of `candidates`, drawn uniformly without replacement from `rng`, sorted ascending.
 * Asking for more than there are is a BAD_OPTION on `rate`.
 */
export function drawIndices(
  owner: string,
  candidates: readonly number[],
  count: number,
  rng: Rng,
  what = 'examples',
): number[] {
  if (count > candidates.length) {
    throw optionError(
      owner,
      'rate',
      `asks for ${count} poisoned examples but only ${candidates.length} ${what} are eligible`,
    );
  }
  const order = rng.permutation(candidates.length);
  const picked: number[] = [];
  for (let i = 0; i < count; i++) picked.push(candidates[order[i]]);
  return picked.sort((a, b) => a - b);
}

/** A class option must name one of the data's classes. */
export function checkClass(owner: string, option: string, value: number, data: Dataset): void {
  if (!(Number.isInteger(value) && value >= 0 && value < data.numClasses)) {
    throw optionError(
      owner,
      option,
      `class ${value} is outside [0, ${data.numClasses}) (the data set has ${data.numClasses} classes)`,
    );
  }
}

/** The reference model, or a BAD_OPTION saying the attack needs one. */
export function requireModel(owner: string, ctx: PoisonContext, data: Dataset): Classifier {
  const model = ctx.model;
  if (model === undefined) {
    throw optionError(owner, 'model', 'is required: the attack crafts on a reference model');
  }
  const [, h, w, c] = data.shape;
  const s = model.inputShape;
  if (s.length !== 3 || s[0] !== h || s[1] !== w || s[2] !== c) {
    throw optionError(
      owner,
      'model',
      `input shape [${s.join(', ')}] does not match the data's [${h}, ${w}, ${c}]`,
    );
  }
  if (model.numClasses !== data.numClasses) {
    throw optionError(
      owner,
      'model',
      `has ${model.numClasses} classes, the data set ${data.numClasses}`,
    );
  }
  return model;
}

/** Checks the training set before an attack reads it. */
export function checkTrainingSet(owner: string, data: Dataset): void {
  checkDataset(data, owner);
}

/** A copy of `data` (x and labels) to poison, named after the attack. */
export function poisonedCopy(data: Dataset, attack: string): Dataset {
  const out: Dataset = {
    name: `${data.name}+${attack}`,
    x: data.x.slice(),
    shape: [...data.shape],
    labels: data.labels.slice(),
    numClasses: data.numClasses,
  };
  if (data.classNames) out.classNames = [...data.classNames];
  return out;
}

/** Reports `done / total` and checks the abort signal; yields to timers between work items. */
export async function step(ctx: PoisonContext, done: number, total: number): Promise<void> {
  ctx.signal?.throwIfAborted();
  ctx.progress?.(total === 0 ? 1 : Math.min(1, done / total));
  await new Promise((resolve) => setImmediate(resolve));
  ctx.signal?.throwIfAborted();
}

/** The poison rate every attack but label flipping reads: a fraction of the training set. */
export const rateSchema = (fallback: number) =>
  z
    .number()
    .min(0)
    .max(1)
    .default(fallback)
    .describe('fraction of the training set poisoned, in [0, 1]');

/**
 * The test images at `indices` of `ctx.test`, checked: the test set matches the data, every
 * index is inside it, and no image is already of the class the attacker wants.
 */
export function targetImages(
  owner: string,
  option: string,
  ctx: PoisonContext,
  data: Dataset,
  indices: readonly number[],
  wanted: number,
): Dataset {
  const test = ctx.test;
  if (test === undefined) {
    throw optionError(owner, 'test', 'is required: the target images are indices into a test set');
  }
  const same = test.shape.slice(1).every((d, i) => d === data.shape[i + 1]);
  if (!same || test.numClasses !== data.numClasses) {
    throw optionError(
      owner,
      'test',
      `set '${test.name}' does not match the training set's images or classes`,
    );
  }
  const n = test.labels.length;
  for (const i of indices) {
    if (i >= n) throw optionError(owner, option, `index ${i} is outside the test set [0, ${n})`);
    if (test.labels[i] === wanted) {
      throw optionError(
        owner,
        option,
        `test image ${i} is already of class ${wanted}, the attack's target`,
      );
    }
  }
  return selectExamples(test, indices);
}
