/**
 * Threshold attacks: a member is an example whose signal passes a threshold — low loss (Yeom et
 * al. 2018), high true-class confidence, low modified entropy (Song & Mittal 2021, who also set
 * one threshold per class).
 *
 * Threat model: the attacker sees the target's scores (logits) on the candidates and knows their
 * labels. The threshold is chosen on reference ("shadow") models: their signals on examples whose
 * membership in *those* models is known, at the threshold that maximises balanced accuracy there.
 * The target's membership is not an input of any function here, so it cannot leak into the
 * threshold; the global variant (no reference models) takes a fixed threshold from the user or
 * makes no decision at all.
 *
 * The calibration functions work on any per-example score where higher means member, so the
 * label-only signals (augmentation and noise robustness, boundary distance) reuse them.
 */
import { z } from 'zod';
import { check } from '../../../errors.js';
import type { MembershipInput, MembershipScores } from './membership.js';
import { checkMembershipInput } from './membership.js';
import { bestBalancedAccuracy, rocCurve } from './roc.js';
import { HIGHER_IS_MEMBER, meanOverQueries, orientedSignal, type SignalName } from './signals.js';

export const thresholdSchema = z.strictObject({
  calibration: z
    .enum(['reference', 'fixed', 'none'])
    .default('reference')
    .describe(
      "how the decision threshold is set: 'reference' (maximise balanced accuracy on the reference models' known members and non-members), 'fixed' (the value of threshold: the global variant without reference models), 'none' (scores only, no decisions)",
    ),
  threshold: z
    .number()
    .default(0)
    .describe("the threshold in the signal's own units when calibration is 'fixed'"),
  perClass: z
    .boolean()
    .default(false)
    .describe('one threshold per true class, chosen on reference data (Song & Mittal 2021)'),
  augmented: z
    .boolean()
    .default(false)
    .describe('average the signal over every query given (augmented copies) instead of the first'),
});
export type ThresholdConfig = z.output<typeof thresholdSchema>;

/** Scores of reference models: `[j][i]` higher = member, with `membership[j][i]` known (0/1). */
export interface ThresholdReference {
  scores: readonly ArrayLike<number>[];
  membership: readonly ArrayLike<number>[];
}

/**
 * The threshold maximising balanced accuracy of `score >= threshold` on (scores, membership),
 * set midway between the best distinct score and the next lower one (the whole interval scores
 * the same on these data; the middle generalises best). At least one example is flagged.
 */
export function chooseThreshold(
  scores: ArrayLike<number>,
  membership: ArrayLike<number>,
): { threshold: number; balancedAccuracy: number } {
  for (let i = 0; i < scores.length; i++) {
    check(Number.isFinite(scores[i]), () => `chooseThreshold: score ${i} is not finite`);
  }
  const curve = rocCurve(scores, membership);
  // Point 0 flags nothing (threshold +∞); search the rules that flag something.
  const tail = { ...curve, tpr: curve.tpr.subarray(1), fpr: curve.fpr.subarray(1) };
  const { index, balancedAccuracy } = bestBalancedAccuracy(tail);
  const t = index + 1;
  const threshold =
    t + 1 < curve.thresholds.length
      ? (curve.thresholds[t] + curve.thresholds[t + 1]) / 2
      : curve.thresholds[t];
  return { threshold, balancedAccuracy };
}

/** The pairs (score, membership) of every reference model on the candidates `keep` admits. */
function pooled(ref: ThresholdReference, keep: (i: number) => boolean) {
  const scores: number[] = [];
  const membership: number[] = [];
  for (const [j, s] of ref.scores.entries()) {
    const m = ref.membership[j];
    check(
      s.length === m.length,
      () => `thresholds: reference ${j} has ${s.length} scores and ${m.length} membership entries`,
    );
    for (let i = 0; i < s.length; i++) {
      if (!keep(i)) continue;
      scores.push(s[i]);
      membership.push(m[i]);
    }
  }
  return { scores, membership };
}

function hasBoth(membership: readonly number[]): boolean {
  return membership.includes(0) && membership.includes(1);
}

/**
 * Thresholds chosen on reference data: one global, and with `classes` one per class (a class
 * whose reference data lack members or non-members takes the global one, with a warning).
 */
export function calibrateThresholds(
  ref: ThresholdReference,
  classes?: { labels: ArrayLike<number>; numClasses: number },
): { global: number; balancedAccuracy: number; perClass?: Float64Array; warnings: string[] } {
  check(ref.scores.length > 0, () => 'thresholds: no reference models to calibrate on');
  check(
    ref.scores.length === ref.membership.length,
    () =>
      `thresholds: ${ref.scores.length} reference score rows, ${ref.membership.length} membership rows`,
  );
  const all = pooled(ref, () => true);
  check(
    hasBoth(all.membership),
    () => 'thresholds: the reference models have no members or no non-members to calibrate on',
  );
  const global = chooseThreshold(all.scores, all.membership);
  const warnings: string[] = [];
  if (classes === undefined) {
    return { global: global.threshold, balancedAccuracy: global.balancedAccuracy, warnings };
  }
  const perClass = new Float64Array(classes.numClasses);
  for (let c = 0; c < classes.numClasses; c++) {
    const part = pooled(ref, (i) => classes.labels[i] === c);
    if (hasBoth(part.membership)) {
      perClass[c] = chooseThreshold(part.scores, part.membership).threshold;
    } else {
      perClass[c] = global.threshold;
      warnings.push(
        `class ${c}: no reference members or non-members; the global threshold is used`,
      );
    }
  }
  return {
    global: global.threshold,
    balancedAccuracy: global.balancedAccuracy,
    perClass,
    warnings,
  };
}

/** Scores shifted by their threshold (per class when given) and the decisions `score >= 0`. */
export function applyThresholds(
  scores: ArrayLike<number>,
  threshold: number | { perClass: ArrayLike<number>; labels: ArrayLike<number> },
): { scores: Float64Array; decisions: Uint8Array } {
  const shifted = Float64Array.from({ length: scores.length }, (_, i) =>
    typeof threshold === 'number'
      ? scores[i] - threshold
      : scores[i] - threshold.perClass[threshold.labels[i]],
  );
  return { scores: shifted, decisions: Uint8Array.from(shifted, (s) => (s >= 0 ? 1 : 0)) };
}

/**
 * The threshold attack on signal `name`: scores (higher = member, shifted by the threshold so
 * one ranking serves per-class thresholds too) and, unless calibration is 'none', decisions.
 * `details.thresholds` are in the signal's own units (a loss threshold flags loss ≤ it).
 */
export function thresholdAttack(
  name: SignalName,
  input: MembershipInput,
  config: ThresholdConfig,
): MembershipScores {
  checkMembershipInput(input, name);
  const k = input.numClasses;
  const sign = HIGHER_IS_MEMBER[name] ? 1 : -1;
  const signal = (logits: MembershipInput['target']) =>
    meanOverQueries(orientedSignal(name, logits, input.labels, k, config.augmented));
  const target = signal(input.target);
  if (config.calibration === 'none') return { scores: target, details: {}, warnings: [] };
  if (config.calibration === 'fixed') {
    return { ...applyThresholds(target, sign * config.threshold), details: {}, warnings: [] };
  }
  const ref = { scores: input.references.map(signal), membership: input.referenceMembership };
  const cal = calibrateThresholds(
    ref,
    config.perClass ? { labels: input.labels, numClasses: k } : undefined,
  );
  const applied = cal.perClass
    ? applyThresholds(target, { perClass: cal.perClass, labels: input.labels })
    : applyThresholds(target, cal.global);
  return {
    ...applied,
    details: {
      threshold: sign * cal.global,
      ...(cal.perClass ? { perClass: Array.from(cal.perClass, (t) => sign * t) } : {}),
      referenceBalancedAccuracy: cal.balancedAccuracy,
    },
    warnings: cal.warnings,
  };
}
