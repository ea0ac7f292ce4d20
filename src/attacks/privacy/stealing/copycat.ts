/**
 * Copycat CNN (Correia-Silva, Berriel, Badue, de Souza & Oliveira-Santos 2018).
 * Threat model: black box, labels only, a query budget; the attacker queries natural images of a
 * non-problem-domain pool, labels them with the victim's top-1 answer and trains the thief on
 * those labels: Knockoff's random policy with hard targets.
 */
import { z } from 'zod';
import type { Dataset } from '../../../data/dataset.js';
import type { QueryClassifier } from '../../../models/classifier.js';
import { randomTransfer } from './knockoff.js';
import { type StealContext, type StolenModel, stealingShape } from './transfer.js';

export const copycatSchema = z.strictObject({ ...stealingShape });
export type CopycatConfig = z.infer<typeof copycatSchema>;

/** Copycat CNN: the random policy with the victim's top-1 labels as targets. */
export function copycat(
  victim: QueryClassifier,
  pool: Dataset,
  c: CopycatConfig,
  ctx: StealContext = {},
): Promise<StolenModel> {
  return randomTransfer(victim, pool, { ...c, targets: 'hard' }, ctx);
}
