/**
 * Projected Gradient Descent (Madry, Makelov, Schmidt, Tsipras & Vladu 2018).
 * Threat model: white-box, L∞, L2 or L1 ball of radius `eps`, untargeted or targeted.
 * Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32 (true labels).
 * With `restarts` > 1 each example keeps its worst case over the restarts (as AutoAttack does):
 * a restart that fools the model beats one that does not; among equals, the higher loss wins.
 * Caller owns `result.xAdv`.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import type { AttackResult, AttackRunOptions } from '../result.js';
import { evasionAttack } from './factory.js';
import { ascentStep, gradientAttack, type StepRule, startingPoint } from './gradient-loop.js';
import { attackGoal, attackObjective, parseWith } from './objective.js';

export const pgdConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2', 'l1']).default('linf'),
    /** Step length in the chosen norm; defaults to 2.5·eps/steps (Madry et al.). */
    stepSize: z.number().positive().optional(),
    steps: z.number().int().min(0).default(10),
    randomStart: z.boolean().default(true),
    restarts: z.number().int().min(1).default(1),
    targeted: z.boolean().default(false),
    loss: z.enum(['ce', 'margin']).default('ce'),
    /** L1 only: fraction of coordinates the sparse step moves (at least one). */
    l1Fraction: z.number().gt(0).max(1).default(0.01),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type PgdConfigInput = z.input<typeof pgdConfigSchema>;
export type PgdConfig = z.infer<typeof pgdConfigSchema> & { stepSize: number };

/** PGD's result: the attack result, plus the parsed config. */
export type PgdResult = AttackResult & { config: PgdConfig };

export function parsePgdConfig(config: unknown): PgdConfig {
  const c = parseWith('pgd', pgdConfigSchema, config);
  const stepSize = c.stepSize ?? (c.steps > 0 ? (2.5 * c.eps) / c.steps : 0);
  return { ...c, stepSize };
}

/** One PGD step: ascend the objective along the normalised gradient, project, clip. Pure. */
export function pgdStep(
  model: Classifier,
  x: tf.Tensor,
  xAdv: tf.Tensor,
  goal: tf.Tensor1D,
  c: PgdConfig,
): tf.Tensor {
  return ascentStep(
    model,
    x,
    xAdv,
    (logits) => attackObjective(logits, goal, c.targeted, c.loss),
    c,
  );
}

/** `createPgd` validates a config once (the attack it returns does not re-check it); `pgd`: validates `config`, runs PGD and re-clips the result to the eps-ball and bounds. */
export const { create: createPgd, call: pgd } = evasionAttack(
  (config: PgdConfigInput) => parsePgdConfig(config),
  runPgd,
);

async function runPgd(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: PgdConfig,
  opts: AttackRunOptions,
): Promise<PgdResult> {
  const goal = attackGoal('pgd', model, x, labels, c.targeted, opts.targetLabels);
  const rng = new Rng(c.seed);
  const rule: StepRule<tf.Tensor> = {
    // One forked generator per restart: restart r draws the same start whatever `restarts` is.
    start: () => startingPoint(model, x, c, rng.fork()),
    step: (xAdv) => ascentStep(model, x, xAdv, { goal, targeted: c.targeted, loss: c.loss }, c),
    iterate: (xAdv) => xAdv,
    dispose: (xAdv) => xAdv.dispose(),
  };
  const settings = { ...c, ...opts, gradientsPerRun: c.steps };
  return { ...(await gradientAttack(model, x, goal, rule, settings)), config: c };
}
