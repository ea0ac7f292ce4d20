/**
 * Dirty-label backdoors: a fraction of the training set gets a trigger and the attacker's label,
 * so a model trained on it learns "trigger → target" beside the clean task.
 * - BadNets (Gu, Dolan-Gavitt & Garg 2017): a patch trigger; all-to-one (every poisoned example
 *   relabelled `target`, drawn from the other classes) or all-to-all (y → y+1 mod K, drawn from
 *   all classes).
 * - Blended (Chen, Liu, Li, Lu & Song 2017): x' = (1 − α)·x + α·pattern, pattern a seeded uniform
 *   noise image or a given one; all-to-one.
 * `rate` is the fraction of the whole training set poisoned (`round(rate·n)` examples).
 * Threat model: the attacker adds or edits a fraction of the training examples and their labels.
 */
import { z } from 'zod';
import type { Dataset } from '../../data/dataset.js';
import { Rng } from '../../engine/rng.js';
import { seedSchema } from '../../objectives/threat-model.js';
import { parseWith } from '../../options.js';
import { type PoisonResult, poisonResult } from './poison-manifest.js';
import {
  checkClass,
  checkTrainingSet,
  drawIndices,
  indicesWhere,
  optionError,
  type PoisonContext,
  poisonCount,
  poisonedCopy,
  rateSchema,
} from './selection.js';
import {
  blendOptionsShape,
  blendTrigger,
  patchOptionsShape,
  patchTrigger,
  stampTrigger,
  type Trigger,
  triggerPattern,
} from './triggers.js';

export const badnetsSchema = z.strictObject({
  rate: rateSchema(0.01),
  seed: seedSchema.default(0),
  mapping: z
    .enum(['all-to-one', 'all-to-all'])
    .default('all-to-one')
    .describe('all-to-one: triggered inputs → target; all-to-all: y → y+1 mod K'),
  target: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe('class the attacker wants predicted (all-to-one; default 0)'),
  ...patchOptionsShape,
});

export const blendedSchema = z.strictObject({
  rate: rateSchema(0.05),
  seed: seedSchema.default(0),
  target: z.number().int().min(0).default(0).describe('class the attacker wants predicted'),
  ...blendOptionsShape,
});

export type BadnetsConfig = z.infer<typeof badnetsSchema>;
export type BlendedConfig = z.infer<typeof blendedSchema>;

/** BadNets. `ctx.pattern` is the patch image when `pattern` is 'image'. */
export function badnets(
  data: Dataset,
  config: z.input<typeof badnetsSchema>,
  ctx: Pick<PoisonContext, 'pattern'> = {},
): PoisonResult {
  const owner = 'badnets';
  const c = parseWith(owner, badnetsSchema, config);
  checkTrainingSet(owner, data);
  if (c.mapping === 'all-to-all' && c.target !== undefined) {
    throw optionError(owner, 'target', "is not read with mapping 'all-to-all' (y → y+1 mod K)");
  }
  const target = c.mapping === 'all-to-one' ? (c.target ?? 0) : null;
  if (target !== null) checkClass(owner, 'target', target, data);
  const trigger = patchTrigger(owner, c, data.shape.slice(1), ctx.pattern);
  const k = data.numClasses;
  return stampBackdoor(owner, data, {
    options: c,
    target,
    trigger,
    relabel: (y) => (target === null ? (y + 1) % k : target),
  });
}

/** Blended injection. `ctx.pattern` is the blended image when `blendPattern` is 'image'. */
export function blended(
  data: Dataset,
  config: z.input<typeof blendedSchema>,
  ctx: Pick<PoisonContext, 'pattern'> = {},
): PoisonResult {
  const owner = 'blended';
  const c = parseWith(owner, blendedSchema, config);
  checkTrainingSet(owner, data);
  checkClass(owner, 'target', c.target, data);
  const trigger = blendTrigger(owner, c, data.shape.slice(1), ctx.pattern);
  return stampBackdoor(owner, data, {
    options: c,
    target: c.target,
    trigger,
    relabel: () => c.target,
  });
}

/**
 * Poisons `round(rate·n)` examples drawn from `rng(seed)` — from the classes other than `target`
 * (all-to-one) or from all (all-to-all) — with `trigger` and their new label.
 */
function stampBackdoor(
  owner: string,
  data: Dataset,
  p: {
    options: { rate: number; seed: number } & Record<string, unknown>;
    target: number | null;
    trigger: Trigger;
    relabel: (label: number) => number;
  },
): PoisonResult {
  const { rate, seed } = p.options;
  const candidates = indicesWhere(data.labels, (y) => p.target === null || y !== p.target);
  const what = p.target === null ? 'examples' : `examples outside the target class ${p.target}`;
  const indices = drawIndices(
    owner,
    candidates,
    poisonCount(rate, data.labels.length),
    new Rng(seed),
    what,
  );
  const out = poisonedCopy(data, owner);
  const shape = data.shape.slice(1);
  const pattern = triggerPattern(p.trigger, shape);
  for (const i of indices) {
    stampTrigger(out.x, i, shape, p.trigger, pattern);
    out.labels[i] = p.relabel(data.labels[i]);
  }
  return poisonResult(data, out, {
    attack: owner,
    options: p.options,
    seed,
    poisonedIndices: indices,
    targetClass: p.target,
    mapping: p.target === null ? 'all-to-all' : 'all-to-one',
    trigger: p.trigger,
    labelsChanged: true,
  });
}
