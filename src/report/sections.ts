/**
 * The report's tables and text: the honesty banner, the headline table, the honesty checks, the
 * notes and the config. Every string from the results goes through `escapeHtml`.
 */
import type { EvaluationResults, Norm, TargetResults, WorstCaseCell } from '../evaluate/results.js';
import { certifiedAt } from './certified-section.js';
import { count, duration, epsGrid, escapeHtml, formatEps, normName, pct } from './format.js';

/** Every check that warns, with its target. */
export function warnings(results: EvaluationResults) {
  return results.targets.flatMap((t) =>
    t.honesty.filter((h) => h.status === 'warn').map((check) => ({ target: t.id, check })),
  );
}

/** The line under the title: a warning when any honesty check warns, a pass line otherwise. */
export function banner(results: EvaluationResults): string {
  const warns = warnings(results);
  const all = results.targets.flatMap((t) => t.honesty);
  if (warns.length > 0) {
    const items = warns
      .map(
        (w) =>
          `<li><strong>${escapeHtml(w.check.title)}</strong> (${escapeHtml(w.target)}): ` +
          `${escapeHtml(w.check.detail)}</li>`,
      )
      .join('');
    return (
      `<div class="banner warn" id="honesty-warning" role="alert"><p><strong>This evaluation may ` +
      `overstate robustness.</strong> ${warns.length} honesty ${warns.length === 1 ? 'check warns' : 'checks warn'}; ` +
      `treat the robust accuracies below as upper bounds until the attacks are strengthened.</p>` +
      `<ul>${items}</ul></div>`
    );
  }
  if (all.length === 0) {
    return (
      '<div class="banner neutral" id="honesty-none"><p><strong>No honesty checks ran.</strong> ' +
      'Nothing here confirms that the attacks were strong enough.</p></div>'
    );
  }
  const passed = all.filter((h) => h.status === 'pass').length;
  const skipped = all.length - passed;
  return (
    `<div class="banner pass" id="honesty-pass"><p><strong>All honesty checks passed</strong> ` +
    `(${passed} passed${skipped ? `, ${skipped} skipped` : ''}): no sign that the attacks were too ` +
    `weak to measure robustness.</p></div>`
  );
}

/** Who broke the examples of a worst-case cell (first in config order), for the cell's tooltip. */
function brokenBy(w: WorstCaseCell): string {
  const counts = new Map<string, number>();
  for (const b of w.brokenBy) if (b !== null) counts.set(b, (counts.get(b) ?? 0) + 1);
  const clean = counts.get('clean') ?? 0;
  counts.delete('clean');
  const parts = [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => `${name} ${n}`);
  return (
    `of ${w.brokenBy.length} examples: ` +
    [
      clean ? `${clean} misclassified clean` : '',
      parts.length ? `broken first by ${parts.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ')
  );
}

function cell(value: number | null, best: boolean, title = '', extra = ''): string {
  const attr = title ? ` title="${escapeHtml(title)}"` : '';
  return `<td class="num${best ? ' best' : ''}"${attr}>${pct(value)}${extra}</td>`;
}

/** Marks the largest value of a column (only when more than one target competes). */
function isBest(values: (number | null)[], v: number | null): boolean {
  const present = values.filter((x): x is number => x !== null);
  return v !== null && present.length > 1 && v === Math.max(...present);
}

/**
 * Per target: clean accuracy, the worst-case robust accuracy at each eps of each norm (with the
 * best certified accuracy at the same eps beneath it, when there is one), and the cost.
 */
export function headlineTable(results: EvaluationResults): string {
  const targets = results.targets;
  if (targets.length === 0) return '<p class="empty">No targets were evaluated.</p>';
  const grid = epsGrid(results);
  const worst = (t: TargetResults, norm: Norm, eps: number) =>
    t.worstCase.find((w) => w.norm === norm && w.eps === eps);

  const head =
    '<tr><th rowspan="2">target</th><th rowspan="2" class="num">clean</th>' +
    grid
      .map(
        (g) =>
          `<th colspan="${g.eps.length}" class="group">worst-case robust, ${normName(g.norm)}</th>`,
      )
      .join('') +
    '<th colspan="3" class="group">cost</th></tr><tr>' +
    grid
      .flatMap((g) => g.eps.map((e) => `<th class="num">ε=${escapeHtml(formatEps(e))}</th>`))
      .join('') +
    '<th class="num">time</th><th class="num">gradients</th><th class="num">queries</th></tr>';

  const cleanValues = targets.map((t) => t.clean.accuracy);
  const body = targets
    .map((t) => {
      const robust = grid.flatMap((g) =>
        g.eps.map((e) => {
          const w = worst(t, g.norm, e);
          const v = w?.robustAccuracy ?? null;
          const column = targets.map((u) => worst(u, g.norm, e)?.robustAccuracy ?? null);
          const certs = certifiedAt(t, g.norm, e);
          const title = [
            w ? brokenBy(w) : '',
            ...certs.map((c) => `${c.method} certifies ${pct(c.accuracy)}`),
          ]
            .filter(Boolean)
            .join('; ');
          const extra = certs.length
            ? `<span class="cert">cert. ${pct(certs[0].accuracy)} ${escapeHtml(certs[0].short)}</span>`
            : '';
          return cell(v, isBest(column, v), title, extra);
        }),
      );
      const meta =
        `<span class="meta">defense: ${escapeHtml(t.defense ?? 'none')}</span>` +
        `<span class="meta">trained against: ${escapeHtml(t.trainedAgainst)}</span>`;
      return (
        `<tr><th scope="row">${escapeHtml(t.id)}${meta}</th>` +
        cell(t.clean.accuracy, isBest(cleanValues, t.clean.accuracy)) +
        robust.join('') +
        `<td class="num">${duration(t.cost.seconds)}</td>` +
        `<td class="num">${count(t.cost.gradientEvaluations)}</td>` +
        `<td class="num">${count(t.cost.queries)}</td></tr>`
      );
    })
    .join('\n');
  return `<div class="scroll"><table class="data headline"><thead>${head}</thead><tbody>${body}</tbody></table></div>`;
}

/** Every honesty check of every target, warnings first. */
export function honestyTable(results: EvaluationResults): string {
  const rank = { warn: 0, pass: 1, skip: 2 } as const;
  const rows = results.targets
    .flatMap((t) => t.honesty.map((h) => ({ target: t.id, h })))
    .sort((a, b) => (rank[a.h.status] ?? 3) - (rank[b.h.status] ?? 3));
  if (rows.length === 0) return '<p class="empty">No honesty checks ran.</p>';
  const body = rows
    .map(
      ({ target, h }) =>
        `<tr class="check-${escapeHtml(h.status)}"><td><span class="badge ${escapeHtml(h.status)}">${escapeHtml(h.status)}</span></td>` +
        `<td>${escapeHtml(target)}</td><td>${escapeHtml(h.title)}</td><td>${escapeHtml(h.detail)}</td></tr>`,
    )
    .join('\n');
  return (
    '<table class="data checks"><thead><tr><th>status</th><th>target</th><th>check</th><th>detail</th></tr></thead>' +
    `<tbody>${body}</tbody></table>`
  );
}

export function notesList(results: EvaluationResults): string {
  if (results.notes.length === 0) return '<p class="empty">No notes.</p>';
  return `<ul class="notes">${results.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`;
}

export function configBlock(results: EvaluationResults): string {
  return (
    '<details><summary>Config as run (JSON)</summary>' +
    `<pre class="config">${escapeHtml(JSON.stringify(results.config, null, 2))}</pre></details>`
  );
}

/** Data set and run facts under the title. */
export function runFacts(results: EvaluationResults): string {
  const d = results.dataset;
  const seconds = results.finished
    ? (Date.parse(results.finished) - Date.parse(results.started)) / 1000
    : Number.NaN;
  const facts: [string, string][] = [
    ['data set', d.name],
    ['examples', count(d.n)],
    ['classes', String(d.classNames.length)],
    ['input', d.inputShape.join(' × ')],
    ['groups', d.groups ? [...new Set(d.groups)].join(', ') : 'none'],
    ['targets', String(results.targets.length)],
    ['started', results.started],
    ['finished', results.finished ?? 'not finished'],
    ['duration', duration(seconds)],
  ];
  return `<dl class="facts">${facts.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join('')}</dl>`;
}
