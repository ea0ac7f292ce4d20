/**
 * The HTML report of an evaluation. Stand-in: a minimal self-contained page with the headline
 * table (clean, worst-case robust and certified accuracy per target), the honesty checks and the
 * notes; the full report replaces it.
 */
import type { EvaluationResults, TargetResults } from '../evaluate/results.js';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const pct = (v: number | null) => (v === null ? '–' : `${(v * 100).toFixed(1)}%`);

function headline(results: EvaluationResults): string {
  const keys = [
    ...new Set(results.targets.flatMap((t) => t.worstCase.map((w) => `${w.norm}:${w.eps}`))),
  ];
  const head = ['target', 'trained against', 'clean', ...keys.map((k) => `worst case ${k}`)];
  const row = (t: TargetResults) => [
    t.id,
    t.trainedAgainst,
    pct(t.clean.accuracy),
    ...keys.map((k) =>
      pct(t.worstCase.find((w) => `${w.norm}:${w.eps}` === k)?.robustAccuracy ?? null),
    ),
  ];
  const cells = (tag: string, values: string[]) =>
    `<tr>${values.map((v) => `<${tag}>${escapeHtml(v)}</${tag}>`).join('')}</tr>`;
  return `<table>${cells('th', head)}${results.targets.map((t) => cells('td', row(t))).join('')}</table>`;
}

function honesty(t: TargetResults): string {
  const items = t.honesty.map(
    (h) =>
      `<li><b>${escapeHtml(h.status)}</b> ${escapeHtml(h.title)}: ${escapeHtml(h.detail)}</li>`,
  );
  return `<h3>${escapeHtml(t.id)}</h3><ul>${items.join('')}</ul>`;
}

export function renderReport(results: EvaluationResults): string {
  const notes = results.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('');
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8"><title>parry evaluation</title></head><body>',
    `<h1>parry evaluation: ${escapeHtml(results.dataset.name)}, ${results.dataset.n} examples</h1>`,
    headline(results),
    '<h2>Honesty checks</h2>',
    ...results.targets.map(honesty),
    notes === '' ? '' : `<h2>Notes</h2><ul>${notes}</ul>`,
    '</body></html>',
    '',
  ].join('\n');
}
