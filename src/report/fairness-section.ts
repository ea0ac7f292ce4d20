/**
 * Fairness section: clean and worst-case robust accuracy per class and per group (bar charts),
 * and the summary of gaps — the largest gap between the best and the worst class or group, their
 * ratio, and who they are.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { EvaluationResults, FairnessResult, GroupStat, Norm } from '../evaluate/results.js';
import { epsGrid, escapeHtml, keyName, pct, points, ratio } from './format.js';
import { type Chart, chart, targetPanels } from './vega.js';

/** The middle eps of each norm's grid: the one the bar charts show (all of them are in tables). */
export function referenceKeys(
  results: EvaluationResults,
): { norm: Norm; eps: number; key: string }[] {
  return epsGrid(results).map(({ norm, eps }) => {
    const e = eps[Math.floor((eps.length - 1) / 2)];
    return { norm, eps: e, key: `${norm}:${e}` };
  });
}

function barChart(results: EvaluationResults, over: 'class' | 'group'): Chart | null {
  const keys = referenceKeys(results);
  const measures = ['clean', ...keys.map((k) => `robust ${keyName(k.key)}`)];
  const rows: Record<string, unknown>[] = [];
  const order: string[] = [];
  for (const t of results.targets) {
    const stats = over === 'class' ? t.fairness.perClass : t.fairness.perGroup;
    for (const s of stats ?? []) {
      if (!order.includes(s.group)) order.push(s.group);
      const base = { target: t.id, name: s.group, n: s.n };
      rows.push({ ...base, measure: measures[0], accuracy: s.cleanAccuracy });
      keys.forEach((k, i) => {
        const acc = s.robustAccuracy[k.key];
        if (acc !== undefined && acc !== null)
          rows.push({ ...base, measure: measures[i + 1], accuracy: acc });
      });
    }
  }
  if (rows.length === 0) return null;
  const spec: TopLevelSpec = {
    data: { values: rows },
    facet: targetPanels(
      results.targets.map((t) => t.id),
      'row',
    ),
    spec: {
      width: { step: 13, for: 'offset' },
      height: 150,
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'name', type: 'nominal', sort: order, title: over, axis: { labelAngle: -30 } },
        xOffset: { field: 'measure', type: 'nominal', sort: measures },
        y: {
          field: 'accuracy',
          type: 'quantitative',
          scale: { domain: [0, 1] },
          axis: { format: '.0%', title: 'accuracy' },
        },
        color: {
          field: 'measure',
          type: 'nominal',
          title: null,
          sort: measures,
          scale: { domain: measures, range: ['#9ecae1', '#e6550d', '#756bb1', '#31a354'] },
        },
        tooltip: [
          { field: 'target', title: 'target' },
          { field: 'name', title: over },
          { field: 'n', title: 'examples' },
          { field: 'measure', title: 'measure' },
          { field: 'accuracy', title: 'accuracy', format: '.1%' },
        ],
      },
    },
  };
  const refs = keys.map((k) => keyName(k.key)).join(', ');
  return chart(
    `Accuracy per ${over}`,
    `Clean and worst-case robust accuracy per ${over}, one panel per target` +
      (refs ? ` (robust at ${refs}; every ε is in the table below).` : '.'),
    spec,
  );
}

/** The per-class chart, and the per-group chart when groups are defined. */
export function fairnessCharts(results: EvaluationResults): Chart[] {
  return [barChart(results, 'class'), barChart(results, 'group')].filter(
    (c): c is Chart => c !== null,
  );
}

function accuracyOf(stats: GroupStat[] | null, name: string, key: string): number | null {
  const s = stats?.find((g) => g.group === name);
  if (!s) return null;
  return key === 'clean' ? s.cleanAccuracy : (s.robustAccuracy[key] ?? null);
}

function summaryRows(f: FairnessResult, keep: (key: string) => boolean): string {
  return f.summary
    .filter((s) => keep(s.key))
    .map((s) => {
      const stats = s.over === 'class' ? f.perClass : f.perGroup;
      const who = (name: string) =>
        `${escapeHtml(name)} <span class="muted">(${pct(accuracyOf(stats, name, s.key))})</span>`;
      return (
        `<tr><td>${escapeHtml(s.over)}</td><td>${escapeHtml(keyName(s.key))}</td>` +
        `<td>${who(s.worst)}</td><td>${who(s.best)}</td>` +
        `<td class="num">${points(s.gap)}</td><td class="num">${ratio(s.ratio)}</td></tr>`
      );
    })
    .join('\n');
}

const SUMMARY_HEAD =
  '<thead><tr><th>over</th><th>measure</th><th>worst</th><th>best</th>' +
  '<th class="num">largest gap</th><th class="num">worst / best</th></tr></thead>';

/** Per target: the largest gap in a sentence, a table at the chart's eps, every eps collapsed. */
export function fairnessSummary(results: EvaluationResults): string {
  const shown = new Set(['clean', ...referenceKeys(results).map((k) => k.key)]);
  const blocks = results.targets.map((t) => {
    const f = t.fairness;
    if (f.summary.length === 0) {
      return `<div><h3>${escapeHtml(t.id)}</h3><p class="empty">No fairness summary was computed.</p></div>`;
    }
    const top = f.summary.reduce((a, b) => (b.gap > a.gap ? b : a));
    const stats = top.over === 'class' ? f.perClass : f.perGroup;
    const sentence =
      `Largest gap: ${points(top.gap)} between ${top.over} <strong>${escapeHtml(top.worst)}</strong> ` +
      `(${pct(accuracyOf(stats, top.worst, top.key))}) and <strong>${escapeHtml(top.best)}</strong> ` +
      `(${pct(accuracyOf(stats, top.best, top.key))}), ${escapeHtml(keyName(top.key))}` +
      (top.ratio === null ? '.' : `; worst / best = ${ratio(top.ratio)}.`);
    const rest = summaryRows(f, (k) => !shown.has(k));
    return (
      `<div><h3>${escapeHtml(t.id)}</h3><p>${sentence}</p>` +
      `<table class="data">${SUMMARY_HEAD}<tbody>${summaryRows(f, (k) => shown.has(k))}</tbody></table>` +
      (rest
        ? `<details><summary>Every ε</summary><table class="data">${SUMMARY_HEAD}<tbody>${rest}</tbody></table></details>`
        : '') +
      '</div>'
    );
  });
  return `<div class="fairness-targets">${blocks.join('\n')}</div>`;
}
