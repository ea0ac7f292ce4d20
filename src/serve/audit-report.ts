/**
 * The endpoint audit's page: one self-contained HTML file (no script, no network: the
 * Content-Security-Policy forbids both) with the audit's facts, a black-box banner, one table for
 * the attacks and one for stealing, and the notes. Every string from the results is escaped.
 */
import { escapeHtml, pct, ratio } from '../report/format.js';
import { REPORT_CSS } from '../report/style.js';
import type { AuditResults, StageRecord } from './audit-config.js';

const CSP = "default-src 'none'; style-src 'unsafe-inline'";

/** Facts about the endpoint the page shows (the URL without credentials, what it answers). */
export interface AuditEndpoint {
  url: string;
  outputs?: 'scores' | 'labels';
  guards?: Record<string, unknown>;
  requests: number;
  waitedSeconds: number;
}

const num = (v: unknown) => (typeof v === 'number' ? v : null);
const cell = (v: string) => `<td>${escapeHtml(v)}</td>`;

function status(r: StageRecord): string {
  return r.status !== 'done' && r.note ? `${r.status} — ${r.note}` : r.status;
}

function evasionRows(stages: StageRecord[]): string {
  return stages
    .filter((r) => r.stage === 'square' || r.stage === 'hsj')
    .map((r) => {
      const m = r.metrics ?? {};
      return `<tr>${[
        r.stage === 'square' ? 'Square (score-based)' : 'HopSkipJump (label-only)',
        pct(num(m.robustAccuracy)),
        pct(num(m.successRate)),
        num(m.maxQueriesPerExample)?.toString() ?? '—',
        ratio(num(m.meanQueries)),
        ratio(num(m.medianNorm)),
        `${r.queries} / ${r.share}`,
        status(r),
      ]
        .map(cell)
        .join('')}</tr>`;
    })
    .join('\n');
}

function stealingRows(stages: StageRecord[]): string {
  return stages
    .filter((r) => r.stage === 'knockoff' || r.stage === 'copycat')
    .map((r) => {
      const m = r.metrics ?? {};
      return `<tr>${[
        r.stage === 'knockoff' ? 'Knockoff' : 'Copycat',
        pct(num(m.agreement)),
        pct(num(m.accuracy)),
        pct(num(m.transferRate)),
        typeof m.targets === 'string' ? m.targets : '—',
        `${r.queries} / ${r.share}`,
        status(r),
      ]
        .map(cell)
        .join('')}</tr>`;
    })
    .join('\n');
}

function membershipBlock(stages: StageRecord[]): string {
  const r = stages.find((s) => s.stage === 'membership');
  if (r === undefined) return '';
  const m = r.metrics;
  const body = m
    ? `<table><thead><tr><th>signal</th><th>train mean ± std</th><th>test mean ± std</th><th>AUC</th><th>queries</th></tr></thead>
<tbody><tr>${[
        `noise σ = ${m.sigma}, ${m.samples} copies`,
        `${ratio(num(m.trainMean))} ± ${ratio(num(m.trainStd))}`,
        `${ratio(num(m.testMean))} ± ${ratio(num(m.testStd))}`,
        ratio(num(m.auc)),
        `${r.queries} / ${r.share}`,
      ]
        .map(cell)
        .join('')}</tr></tbody></table>`
    : '';
  return `<section id="membership"><h2>Label-only membership signal</h2>
${body}<p class="caption">${escapeHtml(r.status === 'done' ? (r.note ?? '') : status(r))}</p></section>`;
}

export function renderAuditReport(r: AuditResults, endpoint: AuditEndpoint): string {
  const c = r.config;
  const title = `parry audit — ${endpoint.url}`;
  const facts: [string, string][] = [
    ['endpoint', endpoint.url],
    ['answers', endpoint.outputs ?? 'unknown'],
    ['data', `${r.dataset.name} (n = ${r.dataset.n}); pool ${r.dataset.pool}`],
    ['threat model', `${c.norm === 'linf' ? 'L∞' : 'L2'} ε = ${c.eps}`],
    ['budget', `${r.queries} of ${c.budget} queries in ${endpoint.requests} requests`],
    ['waited (Retry-After)', `${endpoint.waitedSeconds} s`],
    ['seed', String(c.seed)],
  ];
  const guards = endpoint.guards
    ? `<h3>Guards the endpoint reports</h3><pre>${escapeHtml(JSON.stringify(endpoint.guards, null, 2))}</pre>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="parry">
<title>${escapeHtml(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<main>
<header>
<h1>${escapeHtml(title)}</h1>
<dl class="facts">${facts.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join('')}</dl>
<div class="banner neutral" id="black-box"><p><strong>Black-box audit.</strong> Only the endpoint's
answers were used: no weights, no gradients. Query attacks within a budget give upper bounds on
robust accuracy; a white-box evaluation of the same model is stronger.</p></div>
</header>
<section id="clean"><h2>Clean accuracy</h2><p>${pct(r.clean.accuracy)} on ${r.dataset.n} test examples (${r.clean.queries} queries).</p></section>
<section id="evasion"><h2>Evasion</h2>
<table><thead><tr><th>attack</th><th>robust accuracy</th><th>success rate</th><th>queries / example (max)</th><th>mean queries</th><th>median ‖δ‖</th><th>queries / share</th><th>status</th></tr></thead>
<tbody>
${evasionRows(r.stages)}
</tbody></table></section>
${membershipBlock(r.stages)}
<section id="stealing"><h2>Model stealing</h2>
<table><thead><tr><th>method</th><th>agreement</th><th>thief accuracy</th><th>transfer rate</th><th>targets</th><th>queries / share</th><th>status</th></tr></thead>
<tbody>
${stealingRows(r.stages)}
</tbody></table></section>
<section id="notes"><h2>Notes</h2>${guards}
<ul>${[...r.notes, ...r.stages.filter((s) => s.note).map((s) => `${s.stage}: ${s.note}`)]
    .map((n) => `<li>${escapeHtml(n)}</li>`)
    .join('')}</ul></section>
<footer>Generated by parry audit from results.json.</footer>
</main>
</body>
</html>
`;
}
