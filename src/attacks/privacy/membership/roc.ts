/**
 * Membership-inference metrics on plain score arrays (higher = more likely a member), in
 * float64, as Carlini et al. 2022 ("Membership Inference Attacks From First Principles") report
 * them: the ROC curve, its area, the best balanced accuracy, and the TPR at a low FPR (0.1%, 1%),
 * which is what separates attacks that identify some members with confidence from attacks that
 * are merely better than chance on average.
 *
 * - ROC: the rule is `score >= t`; one point per distinct score, so tied scores make one
 *   diagonal step (the curve a random tie-break would give in expectation).
 * - AUC: the trapezoid rule over those points, which equals the Mann–Whitney statistic
 *   P(s_member > s_non-member) + ½·P(tie), computed from integer counts.
 * - TPR at FPR f: the largest TPR of a point whose FPR is at most f (fp ≤ ⌊f·N⌋). With N
 *   non-members the smallest nonzero FPR is 1/N, so TPR at 0.1% needs N well above 1,000 to mean
 *   much; the counts are returned beside it.
 */
import { check } from '../../../errors.js';

export interface RocCurve {
  /** `[t]`: the rule `score >= thresholds[t]`; +Infinity for the (0, 0) point. */
  thresholds: Float64Array;
  /** Members / non-members flagged by each rule (nondecreasing, from 0 to the totals). */
  truePositives: Float64Array;
  falsePositives: Float64Array;
  tpr: Float64Array;
  fpr: Float64Array;
  members: number;
  nonMembers: number;
}

/** A few ROC points for plotting on log–log axes: FPR and TPR, ascending. */
export interface CompactRoc {
  fpr: number[];
  tpr: number[];
}

/** The FPRs at which `membershipMetrics` reports the TPR (Carlini et al.'s 0.1% and 1%). */
export const LOW_FPRS = ['0.001', '0.01'] as const;
export type LowFpr = (typeof LOW_FPRS)[number];

export interface MembershipMetrics {
  auc: number;
  /** max over thresholds of (TPR + TNR) / 2: the best any threshold on these scores could do. */
  balancedAccuracy: number;
  /** Largest TPR with FPR at most 0.1% and 1%. */
  tprAt: Record<LowFpr, number>;
  /** The curve sampled for a log–log plot (see `compactRoc`). */
  roc: CompactRoc;
  members: number;
  nonMembers: number;
  /** Balanced accuracy of the attack's own decisions, when it makes them. */
  decisionBalancedAccuracy?: number;
}

function membershipCounts(membership: ArrayLike<number>, n: number, fn: string): number {
  check(membership.length === n, () => `${fn}: ${n} scores but ${membership.length} labels`);
  let members = 0;
  for (let i = 0; i < n; i++) {
    const m = membership[i];
    check(m === 0 || m === 1, () => `${fn}: membership must be 0/1, got ${m} at ${i}`);
    members += m;
  }
  check(
    members > 0 && members < n,
    () => `${fn}: need members and non-members, got ${members} of ${n}`,
  );
  return members;
}

/** The ROC curve of `scores` against `membership` (1 = member, 0 = non-member). */
export function rocCurve(scores: ArrayLike<number>, membership: ArrayLike<number>): RocCurve {
  const n = scores.length;
  const members = membershipCounts(membership, n, 'rocCurve');
  const nonMembers = n - members;
  for (let i = 0; i < n; i++) {
    check(!Number.isNaN(scores[i]), () => `rocCurve: score ${i} is NaN`);
  }
  // Descending; a comparison, not a difference, so ±Infinity scores sort too.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    scores[a] > scores[b] ? -1 : scores[a] < scores[b] ? 1 : 0,
  );
  const thresholds = [Number.POSITIVE_INFINITY];
  const tp = [0];
  const fp = [0];
  let t = 0;
  let f = 0;
  for (let i = 0; i < n; ) {
    const s = scores[order[i]];
    // Every example tied at s joins at once: one point per distinct threshold.
    for (; i < n && scores[order[i]] === s; i++) {
      if (membership[order[i]] === 1) t++;
      else f++;
    }
    thresholds.push(s);
    tp.push(t);
    fp.push(f);
  }
  return {
    thresholds: Float64Array.from(thresholds),
    truePositives: Float64Array.from(tp),
    falsePositives: Float64Array.from(fp),
    tpr: Float64Array.from(tp, (v) => v / members),
    fpr: Float64Array.from(fp, (v) => v / nonMembers),
    members,
    nonMembers,
  };
}

/** Area under `curve` by the trapezoid rule, from integer counts. */
export function curveAuc(curve: RocCurve): number {
  const { truePositives: tp, falsePositives: fp } = curve;
  let twice = 0;
  for (let t = 1; t < tp.length; t++) twice += (fp[t] - fp[t - 1]) * (tp[t] + tp[t - 1]);
  return twice / (2 * curve.members * curve.nonMembers);
}

/** The point of `curve` with the best balanced accuracy (the first, on ties) and that accuracy. */
export function bestBalancedAccuracy(curve: RocCurve): { index: number; balancedAccuracy: number } {
  let index = 0;
  let best = -1;
  for (let t = 0; t < curve.tpr.length; t++) {
    const ba = (curve.tpr[t] + 1 - curve.fpr[t]) / 2;
    if (ba > best) {
      best = ba;
      index = t;
    }
  }
  return { index, balancedAccuracy: best };
}

/** (TPR + TNR) / 2 of hard decisions (1 = member) against `membership`. */
export function balancedAccuracyOf(
  decisions: ArrayLike<number>,
  membership: ArrayLike<number>,
): number {
  const n = decisions.length;
  const members = membershipCounts(membership, n, 'balancedAccuracyOf');
  let tp = 0;
  let tn = 0;
  for (let i = 0; i < n; i++) {
    const d = decisions[i] ? 1 : 0;
    if (membership[i] === 1) tp += d;
    else tn += 1 - d;
  }
  return (tp / members + tn / (n - members)) / 2;
}

/** Balanced accuracy of the rule `score >= threshold`. */
export function balancedAccuracyAt(
  scores: ArrayLike<number>,
  membership: ArrayLike<number>,
  threshold: number,
): number {
  return balancedAccuracyOf(
    Uint8Array.from({ length: scores.length }, (_, i) => (scores[i] >= threshold ? 1 : 0)),
    membership,
  );
}

/** Index of the last point of `curve` with at most ⌊fpr·N⌋ false positives. */
function lastIndexWithin(curve: RocCurve, fpr: number): number {
  const limit = Math.floor(fpr * curve.nonMembers + 1e-9);
  const fp = curve.falsePositives;
  // fp is nondecreasing and fp[0] = 0: binary search for the last entry <= limit.
  let lo = 0;
  let hi = fp.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (fp[mid] <= limit) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * The largest TPR among the points of `curve` with FPR at most `fpr`, with that point's FPR and
 * threshold. (Carlini et al.'s plotting code takes FPR strictly below the target; the two differ
 * only when ⌊fpr·N⌋ false positives are reached exactly.)
 */
export function curveTprAtFpr(
  curve: RocCurve,
  fpr: number,
): { tpr: number; fpr: number; threshold: number } {
  check(
    fpr >= 0 && fpr <= 1,
    () => `curveTprAtFpr: fpr must be in [0, 1], got ${fpr}`,
    'BAD_OPTION',
  );
  const t = lastIndexWithin(curve, fpr);
  return { tpr: curve.tpr[t], fpr: curve.fpr[t], threshold: curve.thresholds[t] };
}

/**
 * At most `points` + 1 points of `curve` for a log–log plot: its upper staircase read at FPRs
 * spaced evenly in log from 1/N to 1 (so the low-FPR region keeps its resolution), plus the TPR
 * at FPR 0. A log axis cannot show 0: the report clips to [1/N, 1].
 */
export function compactRoc(curve: RocCurve, points = 100): CompactRoc {
  check(
    Number.isInteger(points) && points >= 2,
    () => `compactRoc: points must be an integer >= 2, got ${points}`,
    'BAD_OPTION',
  );
  const n = curve.nonMembers;
  const picked = new Set<number>([lastIndexWithin(curve, 0)]);
  for (let p = 0; p < points; p++) {
    const f = (1 / n) * n ** (p / (points - 1));
    picked.add(lastIndexWithin(curve, Math.min(1, f)));
  }
  picked.add(curve.tpr.length - 1);
  const idx = [...picked].sort((a, b) => a - b);
  return { fpr: idx.map((t) => curve.fpr[t]), tpr: idx.map((t) => curve.tpr[t]) };
}

/**
 * Every metric of `scores` against `membership`; `decisions` (the attack's own, made without
 * `membership`) add their balanced accuracy.
 */
export function membershipMetrics(
  scores: ArrayLike<number>,
  membership: ArrayLike<number>,
  decisions?: ArrayLike<number>,
  rocPoints = 100,
): MembershipMetrics {
  const curve = rocCurve(scores, membership);
  const tprAt = Object.fromEntries(
    LOW_FPRS.map((f) => [f, curveTprAtFpr(curve, Number(f)).tpr]),
  ) as Record<LowFpr, number>;
  return {
    auc: curveAuc(curve),
    balancedAccuracy: bestBalancedAccuracy(curve).balancedAccuracy,
    tprAt,
    roc: compactRoc(curve, rocPoints),
    members: curve.members,
    nonMembers: curve.nonMembers,
    ...(decisions !== undefined
      ? { decisionBalancedAccuracy: balancedAccuracyOf(decisions, membership) }
      : {}),
  };
}
