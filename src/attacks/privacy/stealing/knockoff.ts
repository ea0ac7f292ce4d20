/**
 * Knockoff Nets (Orekondy, Schiele & Fritz 2019).
 * Threat model: black box, a budget of queries, answers that may be probabilities or labels only;
 * the attacker owns a pool of natural images (not the victim's training data) and a thief
 * architecture. The thief learns the victim's answers on queries drawn from the pool.
 *
 * - random policy: `budget` pool images drawn uniformly without replacement.
 * - adaptive policy: a gradient bandit over the pool's classes (Sutton & Barto 2018, §2.8, as the
 *   paper's §4.1.2 uses it). Each query picks a class a ~ π = softmax(H), then an unused image of
 *   it; its reward r updates H(a) += α(r − r̄)(1 − π(a)) and H(b) −= α(r − r̄)π(b) for b ≠ a, with
 *   r̄ the mean reward so far. Rewards: certainty (top-1 minus top-2 victim probability),
 *   diversity (Σₖ max(0, yₖ − ȳₖ), ȳ the mean of the last `window` answers), loss (the thief's
 *   cross-entropy on the victim's answer, measured before the thief trains on it) or all three,
 *   each standardised by its running mean and deviation and averaged. The thief trains one pass
 *   on each round of queries, then on the whole transfer set.
 *
 * The rewards and the bandit, with their numerical guards, are in knockoff-rewards.ts.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { Dataset } from '../../../data/dataset.js';
import { Rng } from '../../../engine/rng.js';
import { ParryError } from '../../../errors.js';
import type { QueryClassifier } from '../../../models/classifier.js';
import { GradientBandit, KnockoffRewards, REWARD_KINDS } from './knockoff-rewards.js';
import { answerTargets, type BudgetedVictim, isOneHot, withBudget } from './query-budget.js';
import { fitThief, thiefProbabilities } from './thief.js';
import {
  checkPool,
  poolRows,
  queryInto,
  type StealContext,
  type StolenModel,
  stealingShape,
  TransferBuffer,
  thiefBuilderFor,
} from './transfer.js';

const targetsOption = z
  .enum(['auto', 'soft', 'hard'])
  .default('auto')
  .describe(
    "thief targets: the victim's probabilities (soft), its top-1 labels (hard), or auto: soft unless every answer is one-hot",
  );

export const knockoffSchema = z.strictObject({
  ...stealingShape,
  policy: z
    .enum(['random', 'adaptive'])
    .default('random')
    .describe(
      'knockoff query policy: uniform from the pool, or a gradient bandit over its classes',
    ),
  reward: z
    .enum(REWARD_KINDS)
    .default('all')
    .describe(
      'adaptive policy reward: certainty, diversity, thief loss, or all three standardised',
    ),
  alpha: z.number().positive().default(0.1).describe('adaptive policy: bandit step size α'),
  window: z
    .number()
    .int()
    .min(1)
    .default(100)
    .describe('adaptive policy: answers averaged for the diversity reward (Δ)'),
  roundSize: z
    .number()
    .int()
    .min(1)
    .default(32)
    .describe('adaptive policy: queries per round (one thief update per round)'),
  targets: targetsOption,
});
export type KnockoffConfig = z.infer<typeof knockoffSchema>;

/** An arm drawn from `p` with one uniform number. */
function draw(p: Float64Array, rng: Rng): number {
  let u = rng.next();
  let last = 0;
  for (let a = 0; a < p.length; a++) {
    if (p[a] <= 0) continue;
    last = a;
    u -= p[a];
    if (u < 0) return a;
  }
  return last;
}

type Common = z.infer<z.ZodObject<typeof stealingShape>>;

/**
 * The random policy: min(budget, pool size) pool images drawn without replacement from `seed`,
 * labelled by the victim, the thief trained on them with `targets`.
 */
export async function randomTransfer(
  victim: QueryClassifier,
  pool: Dataset,
  c: Common & { targets: 'auto' | 'soft' | 'hard' },
  ctx: StealContext,
): Promise<StolenModel> {
  checkPool(pool, victim, 'stealing');
  const budgeted = withBudget(victim, c.budget);
  const rng = new Rng(c.seed);
  const model = thiefBuilderFor(ctx, c.arch, victim)(rng.nextSeed());
  try {
    const count = Math.min(c.budget, pool.shape[0]);
    const chosen = rng.permutation(pool.shape[0]).subarray(0, count);
    const buffer = new TransferBuffer(victim.inputShape, victim.numClasses);
    await queryInto(buffer, budgeted, poolRows(pool, chosen), count, c.queryBatch, ctx);
    const targets = buffer.targetKind(c.targets);
    await fitThief(model, buffer.transferSet(targets), { ...c, seed: rng.nextSeed() }, ctx.signal);
    return { model, queriesUsed: budgeted.used, transferSize: count, targets, details: {} };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Knockoff Nets with the random or the adaptive policy. */
export function knockoff(
  victim: QueryClassifier,
  pool: Dataset,
  c: KnockoffConfig,
  ctx: StealContext = {},
): Promise<StolenModel> {
  return c.policy === 'random'
    ? randomTransfer(victim, pool, c, ctx)
    : adaptiveTransfer(victim, pool, c, ctx);
}

/** The pool's examples by class, each list in a random order drawn from `rng`. */
function classQueues(pool: Dataset, rng: Rng): number[][] {
  const queues: number[][] = Array.from({ length: pool.numClasses }, () => []);
  for (const i of rng.permutation(pool.shape[0])) {
    const y = pool.labels[i];
    if (!(y >= 0 && y < pool.numClasses)) {
      throw new ParryError(
        'BAD_INPUT',
        `knockoff: pool '${pool.name}' example ${i} has label ${y}, outside [0, ${pool.numClasses})`,
      );
    }
    queues[y].push(i);
  }
  return queues;
}

/** What the adaptive policy carries from round to round. */
interface Adaptive {
  c: KnockoffConfig;
  ctx: StealContext;
  model: tfl.LayersModel;
  victim: BudgetedVictim;
  buffer: TransferBuffer;
  pool: Dataset;
  queues: number[][];
  bandit: GradientBandit;
  rewards: KnockoffRewards;
  rng: Rng;
  pulls: number[];
  log: { sum: number; count: number; nonFinite: number };
}

/** The adaptive policy (see the module comment). */
async function adaptiveTransfer(
  victim: QueryClassifier,
  pool: Dataset,
  c: KnockoffConfig,
  ctx: StealContext,
): Promise<StolenModel> {
  checkPool(pool, victim, 'knockoff');
  const rng = new Rng(c.seed);
  const model = thiefBuilderFor(ctx, c.arch, victim)(rng.nextSeed());
  try {
    const queues = classQueues(pool, rng);
    const present = queues.map((q) => q.length > 0);
    const s: Adaptive = {
      c,
      ctx,
      model,
      victim: withBudget(victim, c.budget),
      buffer: new TransferBuffer(victim.inputShape, victim.numClasses),
      pool,
      queues,
      bandit: new GradientBandit(queues.length, c.alpha),
      rewards: new KnockoffRewards(c.reward, c.window),
      rng,
      pulls: new Array<number>(queues.length).fill(0),
      log: { sum: 0, count: 0, nonFinite: 0 },
    };
    let rounds = 0;
    for (;;) {
      const left = queues.reduce((a, q) => a + q.length, 0);
      const m = Math.min(c.roundSize, s.victim.remaining, left);
      if (m === 0) break;
      await adaptiveRound(s, m);
      rounds++;
    }
    const targets = s.buffer.targetKind(c.targets);
    await fitThief(
      model,
      s.buffer.transferSet(targets),
      { ...c, seed: rng.nextSeed() },
      ctx.signal,
    );
    return {
      model,
      queriesUsed: s.victim.used,
      transferSize: s.buffer.size,
      targets,
      details: {
        rounds,
        pulls: s.pulls,
        probabilities: Array.from(s.bandit.probabilities(present)),
        meanReward: s.log.count === 0 ? null : s.log.sum / s.log.count,
        nonFiniteRewards: s.log.nonFinite,
      },
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * One round of `m` queries: arms drawn from π over the classes with images left (the round's
 * own picks counted), the thief's probabilities on the chosen images, the victim's answers, a
 * reward and a bandit step per query (π over the arms open when the round was drawn), then one
 * training pass of the thief on the round.
 */
async function adaptiveRound(s: Adaptive, m: number): Promise<void> {
  const { c, victim, queues, bandit } = s;
  const k = victim.numClasses;
  const open = queues.map((q) => q.length > 0);
  const left = queues.map((q) => q.length);
  const actions: number[] = [];
  const chosen: number[] = [];
  for (let j = 0; j < m; j++) {
    const a = draw(bandit.probabilities(left.map((n) => n > 0)), s.rng);
    left[a]--;
    actions.push(a);
    chosen.push(queues[a].pop()!);
    s.pulls[a]++;
  }
  const rows = poolRows(s.pool, chosen);
  const q = thiefProbabilities(s.model, rows, [m, ...victim.inputShape]);
  const answers = await queryInto(s.buffer, victim, rows, m, c.queryBatch, s.ctx);
  const y = answerTargets(answers, k, 'soft');
  for (let j = 0; j < m; j++) {
    const r = s.rewards.next(y.subarray(j * k, (j + 1) * k), q.subarray(j * k, (j + 1) * k));
    if (!Number.isFinite(r)) {
      s.log.nonFinite++;
      continue;
    }
    s.log.sum += r;
    s.log.count++;
    bandit.update(actions[j], r, open);
  }
  const kind = c.targets === 'auto' ? (isOneHot(answers, k) ? 'hard' : 'soft') : c.targets;
  const round = {
    x: rows,
    shape: [m, ...victim.inputShape],
    targets: answerTargets(answers, k, kind),
    numClasses: k,
  };
  await fitThief(s.model, round, { ...c, epochs: 1, seed: s.rng.nextSeed() }, s.ctx.signal);
}
