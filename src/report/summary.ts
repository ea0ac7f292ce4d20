/**
 * The plain-text side of a report: the summary object `parry evaluate --json` prints and the
 * fixed-width headline table it logs. Renders results; runs nothing.
 */
import type { EvaluationResults } from '../evaluate/results.js';

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : `${(v * 100).toFixed(1)}%`;

/** Per target: clean and worst-case accuracy per budget, certified accuracy, honesty warnings. */
export function evaluationSummary(r: EvaluationResults) {
  return {
    dataset: r.dataset.name,
    n: r.dataset.n,
    seed: (r.config as { seed?: number }).seed,
    targets: r.targets.map((t) => ({
      id: t.id,
      trained_against: t.trainedAgainst,
      clean_accuracy: t.clean.accuracy,
      worst_case: Object.fromEntries(
        t.worstCase.map((w) => [`${w.norm}:${w.eps}`, w.robustAccuracy]),
      ),
      certified: Object.fromEntries(
        t.certified.map((c) => [
          c.method,
          c.curve.map((p) => ({ radius: p.radius, accuracy: p.accuracy })),
        ]),
      ),
      honesty: Object.fromEntries(t.honesty.map((h) => [h.id, h.status])),
      seconds: Math.round(t.cost.seconds * 100) / 100,
    })),
    notes: r.notes,
  };
}

/** A fixed-width table: target, clean, worst case per budget, honesty warnings. */
export function headline(r: EvaluationResults): string {
  const keys = [...new Set(r.targets.flatMap((t) => t.worstCase.map((w) => `${w.norm}:${w.eps}`)))];
  const head = ['target', 'clean', ...keys, 'certified', 'warnings'];
  const rows = r.targets.map((t) => [
    t.id,
    pct(t.clean.accuracy),
    ...keys.map((k) => pct(t.worstCase.find((w) => `${w.norm}:${w.eps}` === k)?.robustAccuracy)),
    t.certified
      .map((c) => `${c.method}@${c.curve.at(-1)?.radius} ${pct(c.curve.at(-1)?.accuracy)}`)
      .join(', ') || '-',
    t.honesty
      .filter((h) => h.status === 'warn')
      .map((h) => h.id)
      .join(', ') || '-',
  ]);
  const widths = head.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, j) => c.padEnd(widths[j]))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
