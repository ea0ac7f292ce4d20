/**
 * What every data-inspection defence against poisoning returns, and how it is scored against a
 * poisoning recipe's known indices: precision, recall and false-positive rate of the flagged set,
 * and the ROC AUC of the suspicion scores (the probability that a poisoned example scores above a
 * clean one, ties counting one half: the detectors' `rocAuc`).
 */
import { ParryError } from '../../errors.js';
import { rocAuc } from '../detection/metrics.js';

export interface InspectionResult {
  method: string;
  /** Training-set indices flagged as poisoned, ascending. */
  flagged: number[];
  /** One suspicion score per example (higher: more suspicious). */
  scores: Float64Array;
  /** What the method saw per class (e.g. how many it flagged), for reports. */
  perClass: Record<string, number>[];
}

export interface InspectionScore {
  precision: number;
  recall: number;
  falsePositiveRate: number;
  auc: number;
}

/** The result scored against the truly poisoned `poisoned` indices of a set of `n` examples. */
export function scoreInspection(r: InspectionResult, poisoned: readonly number[]): InspectionScore {
  const n = r.scores.length;
  const truth = new Uint8Array(n);
  for (const i of poisoned) {
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      throw new ParryError(
        'BAD_INPUT',
        `scoreInspection: poisoned index ${i} is outside [0, ${n})`,
      );
    }
    truth[i] = 1;
  }
  const positives = poisoned.length;
  const hits = r.flagged.filter((i) => truth[i] === 1).length;
  return {
    precision: r.flagged.length === 0 ? Number.NaN : hits / r.flagged.length,
    recall: positives === 0 ? Number.NaN : hits / positives,
    falsePositiveRate: n === positives ? Number.NaN : (r.flagged.length - hits) / (n - positives),
    auc: rocAuc(
      r.scores.filter((_, i) => truth[i] === 0),
      r.scores.filter((_, i) => truth[i] === 1),
    ),
  };
}
