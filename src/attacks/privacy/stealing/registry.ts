/**
 * The model-stealing attacks, as a plain list. Every entry has one strict schema — the query
 * budget, the seed, how the thief trains, and the method's own options, with defaults — what it
 * needs from the victim (`requires`: labels at least; scores are used when given) and one factory
 * whose runner steals from a victim with a query pool. `runStealing` runs one and scores the
 * thief; `stealingCurve` runs one at a list of budgets. An option a method does not read is
 * refused, naming both.
 */
import type { z } from 'zod';
import type { Dataset } from '../../../data/dataset.js';
import type { QueryClassifier } from '../../../models/classifier.js';
import { findEntry, parseEntryOptions, type TechniqueEntry } from '../../../options.js';
import { copycat, copycatSchema } from './copycat.js';
import { jacobianAugmentation, jacobianSchema } from './jacobian-augmentation.js';
import { knockoff, knockoffSchema } from './knockoff.js';
import { scoreThief, type TransferConfig } from './stealing-metrics.js';
import type { StealContext, StolenModel, TargetKind } from './transfer.js';

/** Every stealing attack, once its options are parsed: a victim and a pool in, a thief out. */
export type StealRunner = (
  victim: QueryClassifier,
  pool: Dataset,
  ctx: StealContext,
) => Promise<StolenModel>;

export type StealingEntry<S extends z.ZodObject = z.ZodObject> = TechniqueEntry<S, StealRunner>;

function entry<S extends z.ZodObject>(e: StealingEntry<S>): StealingEntry {
  return e as unknown as StealingEntry;
}

export const STEALING_ATTACKS: readonly StealingEntry[] = [
  entry({
    name: 'knockoff',
    description:
      "Knockoff Nets (Orekondy et al. 2019): pool images, random or adaptive (gradient bandit) policy, trained on the victim's probabilities",
    schema: knockoffSchema,
    requires: ['labels'],
    create: (o) => (victim, pool, ctx) => knockoff(victim, pool, o, ctx),
  }),
  entry({
    name: 'copycat',
    description:
      "Copycat CNN (Correia-Silva et al. 2018): non-problem-domain pool images labelled with the victim's top-1",
    schema: copycatSchema,
    requires: ['labels'],
    create: (o) => (victim, pool, ctx) => copycat(victim, pool, o, ctx),
  }),
  entry({
    name: 'jacobian',
    description:
      'Jacobian-based augmentation (Papernot et al. 2017): a seed set grown by x + λ·sign(∇F) each round',
    schema: jacobianSchema,
    requires: ['labels'],
    create: (o) => (victim, pool, ctx) => jacobianAugmentation(victim, pool, o, ctx),
  }),
];

export function stealingAttackNames(): string[] {
  return STEALING_ATTACKS.map((a) => a.name);
}

/** One stolen model, scored: the record every stealing run returns. */
export interface StealingResult {
  method: string;
  budget: number;
  queriesUsed: number;
  /** Thief's test accuracy, its top-1 agreement with the victim, PGD transfer rate (metrics file). */
  accuracy: number;
  agreement: number;
  transferRate: number | null;
  victimAccuracy: number;
  /** Test examples the scores are over. */
  testExamples: number;
  transferSize: number;
  targets: TargetKind;
  /** Seconds stealing (queries and training), then scoring. */
  seconds: number;
  scoreSeconds: number;
  seed: number;
  /** The options as parsed (defaults filled in). */
  options: Record<string, unknown>;
  details: Record<string, unknown>;
}

/** The parsed options of stealing attack `name` (BAD_OPTION naming a bad or unknown one). */
export function parseStealingOptions(
  name: string,
  options: Record<string, unknown>,
): Record<string, unknown> & { budget: number; seed: number } {
  const e = findEntry(STEALING_ATTACKS, name, 'stealing attack');
  return parseEntryOptions(e, options) as Record<string, unknown> & {
    budget: number;
    seed: number;
  };
}

/**
 * Steals from `victim` with attack `name` (options checked against its schema) using `pool`,
 * then scores the thief on `test`. The caller owns the returned `model`.
 */
export async function runStealing(
  name: string,
  victim: QueryClassifier,
  data: { pool: Dataset; test: Dataset },
  options: Record<string, unknown>,
  ctx: StealContext & { transfer?: Partial<TransferConfig> } = {},
): Promise<{ result: StealingResult; model: StolenModel['model'] }> {
  const e = findEntry(STEALING_ATTACKS, name, 'stealing attack');
  const o = parseEntryOptions(e, options) as Record<string, unknown> & {
    budget: number;
    seed: number;
  };
  const started = performance.now();
  const stolen = await e.create(o)(victim, data.pool, ctx);
  const seconds = (performance.now() - started) / 1000;
  try {
    const scoring = performance.now();
    const s = await scoreThief(stolen.model, victim, data.test, {
      seed: o.seed,
      ...ctx.transfer,
    });
    const result: StealingResult = {
      method: name,
      budget: o.budget,
      queriesUsed: stolen.queriesUsed,
      accuracy: s.accuracy,
      agreement: s.agreement,
      transferRate: s.transferRate,
      victimAccuracy: s.victimAccuracy,
      testExamples: s.n,
      transferSize: stolen.transferSize,
      targets: stolen.targets,
      seconds,
      scoreSeconds: (performance.now() - scoring) / 1000,
      seed: o.seed,
      options: o,
      details: stolen.details,
    };
    return { result, model: stolen.model };
  } catch (err) {
    stolen.model.dispose();
    throw err;
  }
}

/**
 * The curve of attack `name` over `budgets` (e.g. 250, 500, 1000, … 10000): one fresh thief per
 * budget, same options and seed, each scored and disposed. `onPoint` hears each result.
 */
export async function stealingCurve(
  name: string,
  victim: QueryClassifier,
  data: { pool: Dataset; test: Dataset },
  budgets: readonly number[],
  options: Record<string, unknown>,
  ctx: StealContext & {
    transfer?: Partial<TransferConfig>;
    onPoint?: (r: StealingResult) => void;
  } = {},
): Promise<StealingResult[]> {
  // Every budget checked before the first thief trains.
  for (const budget of budgets) parseStealingOptions(name, { ...options, budget });
  const out: StealingResult[] = [];
  for (const budget of budgets) {
    const { result, model } = await runStealing(name, victim, data, { ...options, budget }, ctx);
    model.dispose();
    out.push(result);
    ctx.onPoint?.(result);
  }
  return out;
}
