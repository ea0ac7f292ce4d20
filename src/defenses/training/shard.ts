/**
 * Robust training across the worker pool: the method's batch loss rebuilt in each worker from a
 * plain spec (src/train/parallel.ts). The caller keeps the schedule and the cost meter; each
 * shard gets the schedule's attack setting for the step and its own seed for the attack's
 * random start, drawn in step-then-shard order from the run's seed so a run is reproducible.
 */
import { compiledModuleUrl } from '../../engine/paths.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import type { ParallelLoss } from '../../train/parallel.js';
import type { AttackSetting, CostMeter, RobustTraining, SettingAt } from './adversarial.js';
import { createFastTraining } from './fast-at.js';
import { createInputGradientRegularizer } from './input-gradient.js';
import { createJacobianRegularizer } from './jacobian.js';
import { createMart } from './mart.js';
import { createPgdTraining } from './pgd-at.js';
import { createTrades } from './trades.js';

export const SHARD_METHODS = [
  'pgd-at',
  'fast-at',
  'trades',
  'mart',
  'grad-reg',
  'jacobian-reg',
] as const;
export type ShardMethod = (typeof SHARD_METHODS)[number];

/** One shard's method: its parsed config (seed included) and the step's attack setting. */
export interface ShardSpec {
  method: ShardMethod;
  config: Record<string, unknown>;
  setting?: AttackSetting;
}

/** Worker side: the method's loss for one shard (the `ParallelLoss` factory). */
export function createShardTraining(spec: ShardSpec): RobustTraining {
  const at: SettingAt | undefined = spec.setting ? () => spec.setting! : undefined;
  const c = spec.config as never;
  switch (spec.method) {
    case 'pgd-at':
      return createPgdTraining(c, at);
    case 'fast-at':
      return createFastTraining(c);
    case 'trades':
      return createTrades(c, at);
    case 'mart':
      return createMart(c, at);
    case 'grad-reg':
      return createInputGradientRegularizer(c);
    case 'jacobian-reg':
      return createJacobianRegularizer(c);
    default:
      throw new ParryError('INTERNAL', `train: no parallel loss for method '${spec.method}'`);
  }
}

/**
 * Caller side: the `ParallelLoss` of a method built with `config` (its parsed config, as the
 * `create*` function returned it). `cost` receives every step's gradient evaluations;
 * `settingAt` is the method's schedule, evaluated in the caller.
 */
export function parallelTraining(
  method: ShardMethod,
  config: { seed?: number } & object,
  cost: CostMeter,
  settingAt?: SettingAt,
): ParallelLoss {
  const seeds = new Rng(config.seed ?? 0);
  return {
    module: compiledModuleUrl(import.meta.url),
    name: 'createShardTraining',
    configFor: (progress): ShardSpec => ({
      method,
      // Methods without randomness (grad-reg) have no seed in their strict config.
      config: 'seed' in config ? { ...config, seed: seeds.nextUint32() } : { ...config },
      ...(settingAt ? { setting: settingAt(progress) } : {}),
    }),
    onCost: (examples, gradientEvaluations) => {
      cost.seen(examples);
      cost.add(1, gradientEvaluations);
    },
  };
}
