/**
 * Schedules of the training radius for adversarial training ("online" / curriculum adversarial
 * training). constant: ε and K throughout. linear: ε ramps from 0 to the target over the first
 * `ramp` fraction of steps, K in proportion (at least 1), step size 2.5·ε_t/K_t. adaptive: ε is
 * chosen per epoch to keep the robust accuracy measured on the held-out split inside a band —
 * raised by `factor` when it is above the band (the model can take more), lowered when below,
 * capped at the target — so training stays at the hardest radius the model currently survives.
 */
import type { TrainProgress } from '../../train/loop.js';
import { type AttackSetting, defaultStepSize, type SettingAt } from './adversarial.js';

export type ScheduleKind = 'constant' | 'linear' | 'adaptive';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Target radius and steps. */
  eps: number;
  steps: number;
  /** linear: fraction of training over which ε ramps up; default 0.5. */
  ramp?: number;
  /** adaptive: robust-accuracy band [low, high]; default [0.4, 0.6]. */
  band?: [number, number];
  /** adaptive: multiplicative change per epoch; default 1.5. */
  factor?: number;
  /** adaptive: the first epoch's ε as a fraction of the target; default 0.25. */
  start?: number;
}

/** One setting at a given ε: K in proportion to ε/target (at least 1). */
export function settingFor(eps: number, target: number, steps: number): AttackSetting {
  // The tolerance keeps float noise (10·0.01/0.1 = 1.0000000000000002) from adding a step.
  const k = Math.max(1, Math.ceil((steps * eps) / target - 1e-9));
  return { eps, steps: k, stepSize: defaultStepSize(eps, k) };
}

/**
 * The adaptive rule: ε·factor when robust accuracy is above the band, ε/factor when below,
 * unchanged inside; always in (0, target].
 */
export function adaptEps(
  eps: number,
  robustAccuracy: number,
  band: [number, number],
  factor: number,
  target: number,
): number {
  if (robustAccuracy > band[1]) return Math.min(target, eps * factor);
  if (robustAccuracy < band[0]) return Math.min(target, eps / factor);
  return Math.min(target, eps);
}

export interface EpsSchedule {
  settingAt: SettingAt;
  /** adaptive: feed the epoch's held-out robust accuracy; returns the next epoch's ε. */
  endEpoch(robustAccuracy: number): number;
  /** The ε used in the epoch that just ended (the setting of its last step). */
  current(progress: TrainProgress): AttackSetting;
}

export function createSchedule(c: ScheduleConfig): EpsSchedule {
  const ramp = c.ramp ?? 0.5;
  const band = c.band ?? [0.4, 0.6];
  const factor = c.factor ?? 1.5;
  let adaptive = c.eps * (c.start ?? 0.25);
  const settingAt: SettingAt = (p) => {
    if (c.kind === 'constant') return settingFor(c.eps, c.eps, c.steps);
    if (c.kind === 'adaptive') return settingFor(adaptive, c.eps, c.steps);
    const t = p.totalSteps > 0 ? (p.step + 1) / p.totalSteps : 1;
    const f = ramp === 0 ? 1 : Math.min(1, t / ramp);
    return settingFor(f * c.eps, c.eps, c.steps);
  };
  return {
    settingAt,
    endEpoch: (robustAccuracy) => {
      if (c.kind === 'adaptive') adaptive = adaptEps(adaptive, robustAccuracy, band, factor, c.eps);
      return adaptive;
    },
    current: settingAt,
  };
}
