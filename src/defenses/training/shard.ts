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
import { TRAINING_METHODS } from './registry.js';

/** A robust method of the training registry (`TRAINING_METHODS`, kind 'robust'). */
export type ShardMethod = string;

/** One shard's method: its parsed config (seed included) and the step's attack setting. */
export interface ShardSpec {
  method: ShardMethod;
  config: Record<string, unknown>;
  setting?: AttackSetting;
}

/** Worker side: the method's loss for one shard (the `ParallelLoss` factory). */
export function createShardTraining(spec: ShardSpec): RobustTraining {
  const at: SettingAt | undefined = spec.setting ? () => spec.setting! : undefined;
  const entry = TRAINING_METHODS.find((m) => m.name === spec.method && m.fromConfig);
  if (entry === undefined) {
    throw new ParryError('INTERNAL', `train: no parallel loss for method '${spec.method}'`);
  }
  return entry.fromConfig!(spec.config as never, at);
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
