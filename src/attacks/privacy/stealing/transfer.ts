/**
 * What every stealing method shares: its inputs (a victim behind a budget, a query pool, how to
 * build a thief), what it returns (the trained thief and the queries it spent), and the transfer
 * set it grows — queries from the pool (or synthesised from it), each with the victim's answer.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { Dataset } from '../../../data/dataset.js';
import { ParryError } from '../../../errors.js';
import type { QueryClassifier } from '../../../models/classifier.js';
import { seedSchema } from '../../../objectives/threat-model.js';
import { requiredMessage } from '../../../options.js';
import { answerTargets, askVictim, isOneHot } from './query-budget.js';
import { architectureThief, type ThiefBuilder, type TransferSet, thiefShape } from './thief.js';

/** The query budget: examples the attacker may ask the victim about. */
export const budgetSchema = z
  .number({ error: requiredMessage })
  .int()
  .min(1, { error: (issue) => `must be a positive integer, got ${String(issue.input)}` })
  .describe('victim queries the attacker may spend (examples asked about)');

/** The options every stealing method reads: its budget, its seed and how the thief trains. */
export const stealingShape = {
  budget: budgetSchema,
  seed: seedSchema.default(0),
  ...thiefShape,
};

/** How the thief learns from the victim's answers: their distributions, or their top-1 labels. */
export type TargetKind = 'soft' | 'hard';

export interface StealContext {
  /**
   * Builds the thief; default the option `arch` at the victim's input shape and class count.
   * Lets a library caller steal into a model no architecture lists (a linear model, say).
   */
  buildThief?: ThiefBuilder;
  signal?: AbortSignal;
  /** Hears the victim queries spent so far, out of the budget. */
  onProgress?: (used: number, budget: number) => void;
}

/** A stealing method's outcome. The caller owns (and disposes) `model`. */
export interface StolenModel {
  model: tfl.LayersModel;
  /** Victim queries spent (examples asked about), never more than the budget. */
  queriesUsed: number;
  /** Examples the thief was finally trained on. */
  transferSize: number;
  targets: TargetKind;
  /** Method-specific facts for the record (bandit probabilities, augmentation rounds, ...). */
  details: Record<string, unknown>;
}

/**
 * Throws BAD_INPUT unless the pool's examples are images of the victim's input shape; the
 * pool's labels (its own classes) may differ in number from the victim's.
 */
export function checkPool(pool: Dataset, victim: QueryClassifier, fn: string): void {
  const want = victim.inputShape;
  const got = pool.shape.slice(1);
  if (want.length !== 3 || got.length !== 3 || want.some((d, i) => d !== got[i])) {
    throw new ParryError(
      'BAD_INPUT',
      `${fn}: pool '${pool.name}' holds examples of shape [${got.join(', ')}]; the victim takes [${want.join(', ')}] (images [h, w, c])`,
    );
  }
  if (pool.shape[0] === 0) throw new ParryError('BAD_INPUT', `${fn}: pool '${pool.name}' is empty`);
}

/** The thief builder a method uses: the caller's, or architecture `arch` fitted to the victim. */
export function thiefBuilderFor(
  ctx: StealContext,
  arch: string,
  victim: QueryClassifier,
): ThiefBuilder {
  return ctx.buildThief ?? architectureThief(arch, victim.inputShape, victim.numClasses);
}

/** The pool's examples at `indices`, copied into one flat array. */
export function poolRows(pool: Dataset, indices: ArrayLike<number>): Float32Array {
  const per = pool.shape[1] * pool.shape[2] * pool.shape[3];
  const out = new Float32Array(indices.length * per);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    out.set(pool.x.subarray(j * per, (j + 1) * per), i * per);
  }
  return out;
}

/**
 * A growing transfer set: rows and raw victim answers appended batch by batch; `targets`
 * reads them as distributions or labels (see `answerTargets`).
 */
export class TransferBuffer {
  private xs: Float32Array[] = [];
  private answers: Float32Array[] = [];
  private n = 0;

  constructor(
    readonly inputShape: number[],
    readonly numClasses: number,
  ) {}

  get size(): number {
    return this.n;
  }

  add(rows: Float32Array, answers: Float32Array): void {
    this.xs.push(rows);
    this.answers.push(answers);
    this.n += answers.length / this.numClasses;
  }

  /** Every answer so far, `[size · numClasses]`. */
  allAnswers(): Float32Array {
    return concat(this.answers);
  }

  /** 'soft' unless every answer is a one-hot label ('auto'), or as asked. */
  targetKind(asked: 'auto' | TargetKind): TargetKind {
    if (asked !== 'auto') return asked;
    return isOneHot(this.allAnswers(), this.numClasses) ? 'hard' : 'soft';
  }

  /** The set as the thief trains on it. */
  transferSet(kind: TargetKind): TransferSet {
    return {
      x: concat(this.xs),
      shape: [this.n, ...this.inputShape],
      targets: answerTargets(this.allAnswers(), this.numClasses, kind),
      numClasses: this.numClasses,
    };
  }
}

function concat(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Asks `victim` about `rows` (`count` examples) in batches of `batchSize`, adds them and the
 * answers to `buffer` and reports progress. Returns the answers.
 */
export async function queryInto(
  buffer: TransferBuffer,
  victim: QueryClassifier & { used: number; budget: number },
  rows: Float32Array,
  count: number,
  batchSize: number,
  ctx: StealContext,
): Promise<Float32Array> {
  if (ctx.signal?.aborted) throw new ParryError('INTERNAL', 'stealing: aborted');
  const answers = await askVictim(victim, rows, count, batchSize);
  buffer.add(rows, answers);
  ctx.onProgress?.(victim.used, victim.budget);
  return answers;
}
