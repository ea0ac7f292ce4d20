/**
 * Robustness across classes and groups: clean and worst-case robust accuracy per class and per
 * group, and for each measure the gap (best − worst) and the ratio (worst / best) between them.
 * A defense that buys robust accuracy for some classes at the cost of others shows up here.
 * Pure functions of the per-example arrays of results.json.
 */
import { budgetKey } from './cells.js';
import type { FairnessResult, GroupStat, WorstCaseCell } from './results.js';

/** Statistics of each group (in order of first appearance); empty groups are left out. */
export function groupStats(
  names: readonly string[],
  labels: ArrayLike<number>,
  cleanPredictions: ArrayLike<number>,
  worst: readonly WorstCaseCell[],
): GroupStat[] {
  const order = [...new Set(names)];
  return order.map((group) => {
    const members = names.flatMap((g, i) => (g === group ? [i] : []));
    const mean = (f: (i: number) => number) =>
      members.reduce((s, i) => s + f(i), 0) / members.length;
    return {
      group,
      n: members.length,
      cleanAccuracy: mean((i) => (cleanPredictions[i] === labels[i] ? 1 : 0)),
      robustAccuracy: Object.fromEntries(
        worst.map((w) => [budgetKey(w.norm, w.eps), mean((i) => w.robust[i])]),
      ),
    };
  });
}

/** Gap and ratio between the best and the worst group for 'clean' and each budget key. */
function summarize(over: 'class' | 'group', stats: GroupStat[]): FairnessResult['summary'] {
  if (stats.length === 0) return [];
  const keys = ['clean', ...Object.keys(stats[0].robustAccuracy)];
  return keys.map((key) => {
    const value = (s: GroupStat) => (key === 'clean' ? s.cleanAccuracy : s.robustAccuracy[key]);
    let best = stats[0];
    let worst = stats[0];
    for (const s of stats) {
      if (value(s) > value(best)) best = s;
      if (value(s) < value(worst)) worst = s;
    }
    return {
      over,
      key,
      gap: value(best) - value(worst),
      ratio: value(best) === 0 ? null : value(worst) / value(best),
      worst: worst.group,
      best: best.group,
    };
  });
}

/**
 * Per class (named by `classNames`, else the label) and, when `groups` is given (one name per
 * example), per group.
 */
export function fairness(
  labels: ArrayLike<number>,
  classNames: readonly string[],
  groups: readonly string[] | null,
  cleanPredictions: ArrayLike<number>,
  worst: readonly WorstCaseCell[],
): FairnessResult {
  const classOf = Array.from(labels, (y) => classNames[y] ?? String(y));
  // Classes in label order, not order of appearance.
  const labelOf = new Map(classOf.map((name, i) => [name, labels[i]]));
  const perClass = groupStats(classOf, labels, cleanPredictions, worst).sort(
    (a, b) => labelOf.get(a.group)! - labelOf.get(b.group)!,
  );
  const perGroup = groups ? groupStats(groups, labels, cleanPredictions, worst) : null;
  return {
    perClass,
    perGroup,
    summary: [...summarize('class', perClass), ...(perGroup ? summarize('group', perGroup) : [])],
  };
}
