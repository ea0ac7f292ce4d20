/**
 * Detection metrics on plain score arrays (higher = more likely adversarial). Float64 throughout.
 * - `rocAuc`: the exact area under the ROC curve, i.e. the Mann–Whitney U statistic
 *   U / (n0·n1) with tied scores counted one half, which equals the trapezoid rule over the
 *   ROC's corner points (ties make diagonal segments).
 * - `thresholdAtFpr` / `tprAtFpr`: the decision rule is `score > threshold`; the threshold is the
 *   (⌊fpr·n⌋+1)-th largest clean score, so at most ⌊fpr·n⌋ clean scores exceed it (exactly that
 *   many when no clean score ties with the threshold).
 */
import { check } from '../../errors.js';

/** ROC AUC of `adversarial` (positives) against `clean` (negatives); NaN if either is empty. */
export function rocAuc(clean: ArrayLike<number>, adversarial: ArrayLike<number>): number {
  const n0 = clean.length;
  const n1 = adversarial.length;
  if (n0 === 0 || n1 === 0) return Number.NaN;
  const all: { s: number; pos: boolean }[] = [];
  for (let i = 0; i < n0; i++) all.push({ s: checked(clean[i]), pos: false });
  for (let i = 0; i < n1; i++) all.push({ s: checked(adversarial[i]), pos: true });
  all.sort((a, b) => a.s - b.s);
  // Sum of the positives' ranks (1-based), ties sharing their average rank.
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j].s === all[i].s) j++;
    const avg = (i + 1 + j) / 2;
    for (let t = i; t < j; t++) if (all[t].pos) rankSum += avg;
    i = j;
  }
  const u = rankSum - (n1 * (n1 + 1)) / 2;
  return u / (n0 * n1);
}

/** The threshold that flags at most ⌊fpr·n⌋ of `clean` (rule `score > threshold`). */
export function thresholdAtFpr(clean: ArrayLike<number>, fpr: number): number {
  check(
    fpr >= 0 && fpr <= 1,
    () => `thresholdAtFpr: fpr must be in [0, 1], got ${fpr}`,
    'BAD_OPTION',
  );
  check(clean.length > 0, () => 'thresholdAtFpr: no clean scores');
  const sorted = Array.from(clean, checked).sort((a, b) => b - a);
  const k = Math.floor(fpr * sorted.length + 1e-9);
  if (k >= sorted.length) return Number.NEGATIVE_INFINITY;
  return sorted[k];
}

/** Fraction of `scores` above `threshold`. */
export function rateAbove(scores: ArrayLike<number>, threshold: number): number {
  if (scores.length === 0) return Number.NaN;
  let c = 0;
  for (let i = 0; i < scores.length; i++) if (scores[i] > threshold) c++;
  return c / scores.length;
}

/** True-positive rate at the threshold `thresholdAtFpr(clean, fpr)` picks, and that threshold. */
export function tprAtFpr(
  clean: ArrayLike<number>,
  adversarial: ArrayLike<number>,
  fpr: number,
): { tpr: number; fpr: number; threshold: number } {
  const threshold = thresholdAtFpr(clean, fpr);
  return { tpr: rateAbove(adversarial, threshold), fpr: rateAbove(clean, threshold), threshold };
}

function checked(v: number): number {
  check(!Number.isNaN(v), () => 'detection metrics: a score is NaN');
  return v;
}
