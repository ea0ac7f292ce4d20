/**
 * Momentum Iterative Method (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018),
 * Algorithm 1: g_{t+1} = μ·g_t + ∇/‖∇‖₁ (per example), x_{t+1} = Proj(x_t + α·sign(g_{t+1})) for
 * L∞; for L2 the step is α·g_{t+1}/‖g_{t+1}‖₂ (the paper's Eq. 8 variant). With μ = 0 it is BIM.
 * Threat model: white-box, L∞ or L2 ball of radius `eps`, untargeted or targeted.
 * Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32.
 * Caller owns `result.xAdv`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import type { AttackResult, AttackRunOptions } from '../result.js';
import { evasionAttack } from './factory.js';
import { attackGradient, gradientAttack, type StepRule, startingPoint } from './gradient-loop.js';
import { attackGoal, parseWith } from './objective.js';
import { enforceThreatModel, normalizeGradient } from './projection.js';

/** Guards the L1 normalisation of a zero gradient. */
const TINY = 1e-12;

export const mimConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2']).default('linf'),
    /** Step length α in the chosen norm; defaults to eps/steps (Dong et al.). */
    stepSize: z.number().positive().optional(),
    steps: z.number().int().min(0).default(10),
    /** Momentum decay μ; 0 gives BIM. */
    decay: z.number().min(0).default(1),
    randomStart: z.boolean().default(false),
    targeted: z.boolean().default(false),
    loss: z.enum(['ce', 'margin']).default('ce'),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type MimConfigInput = z.input<typeof mimConfigSchema>;
export type MimConfig = z.infer<typeof mimConfigSchema> & { stepSize: number };

/** MIM's result: the attack result, plus the parsed config. */
export type MimResult = AttackResult & { config: MimConfig };

/** The iterate and its accumulated momentum; both owned by whoever holds the state. */
export interface MimState {
  xAdv: tf.Tensor;
  g: tf.Tensor;
}

export function parseMimConfig(config: unknown): MimConfig {
  const c = parseWith('mim', mimConfigSchema, config);
  const stepSize = c.stepSize ?? (c.steps > 0 ? c.eps / c.steps : 0);
  return { ...c, stepSize };
}

/** One MIM step: accumulate the L1-normalised gradient into g, step along it, project, clip. Pure. */
export function mimStep(
  model: Classifier,
  x: tf.Tensor,
  state: MimState,
  goal: tf.Tensor1D,
  c: MimConfig,
): MimState {
  return tf.tidy(() => {
    const grad = attackGradient(model, state.xAdv, { goal, targeted: c.targeted, loss: c.loss });
    return mimUpdate(model, x, state, grad, c);
  });
}

/** The MIM step for a given gradient. Call inside `tf.tidy`. */
function mimUpdate(
  model: Classifier,
  x: tf.Tensor,
  state: MimState,
  grad: tf.Tensor,
  c: MimConfig,
) {
  const l1 = tf.sum(tf.abs(tf.reshape(grad, [grad.shape[0], -1])), 1);
  const scale = tf.reshape(tf.maximum(l1, TINY), [-1, ...new Array<number>(grad.rank - 1).fill(1)]);
  const g = tf.add(tf.mul(state.g, c.decay), tf.div(grad, scale));
  const stepped = tf.add(state.xAdv, tf.mul(normalizeGradient(g, c.norm), c.stepSize));
  return { xAdv: enforceThreatModel(stepped, x, c.eps, c.norm, model.bounds), g };
}

/** `createMim` validates a config once (the attack it returns does not re-check it); `mim`: validates `config`, runs MIM and re-clips the result to the eps-ball and bounds. */
export const { create: createMim, call: mim } = evasionAttack(
  (config: MimConfigInput) => parseMimConfig(config),
  runMim,
);

async function runMim(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: MimConfig,
  opts: AttackRunOptions,
): Promise<MimResult> {
  const goal = attackGoal('mim', model, x, labels, c.targeted, opts.targetLabels);
  const rng = new Rng(c.seed);
  const rule: StepRule<MimState> = {
    start: () => ({ xAdv: startingPoint(model, x, c, rng), g: tf.zerosLike(x) }),
    step: (state) => mimStep(model, x, state, goal, c),
    iterate: (state) => state.xAdv,
    dispose: (state) => tf.dispose([state.xAdv, state.g]),
  };
  const settings = { ...c, ...opts, restarts: 1, gradientsPerRun: c.steps };
  return { ...(await gradientAttack(model, x, goal, rule, settings)), config: c };
}
