/**
 * The report's black-box parts, for results `parry audit` wrote from an endpoint's answers alone:
 * the banner under the title (endpoint, budget, what it answers, the guards it reports), the
 * table of every attack, the audit's stages with what stopped them, and the label-only
 * membership signals with the assumption they rest on. Every string goes through `escapeHtml`.
 */
import type { AccessStage, BlackBoxAccess, EvaluationResults } from '../evaluate/results.js';
import { count, duration, escapeHtml, formatEps, normName, pct, ratio } from './format.js';

export type { AccessStage, BlackBoxAccess } from '../evaluate/results.js';

/** Results as the report reads them: `parry evaluate`'s, or an audit's with its `access`. */
export type ReportResults = EvaluationResults;

/** The black-box access of `results`, or null for a white-box evaluation. */
export function blackBoxAccess(results: ReportResults): BlackBoxAccess | null {
  return results.access?.mode === 'black-box' ? results.access : null;
}

/** A parry service's guard summary in a few words, e.g. `output:labels-only, prada (block)`. */
export function describeGuards(guards: Record<string, unknown> | null): string {
  if (guards === null) return 'unknown (not a parry service)';
  const applied = Array.isArray(guards.applied) ? guards.applied.map(String) : [];
  const monitor = guards.extractionMonitor as { method?: unknown; onAlarm?: unknown } | undefined;
  const parts = [
    ...(guards.auth === 'api-key' ? ['api-key'] : []),
    ...applied,
    ...(monitor ? [`${String(monitor.method)} (${String(monitor.onAlarm)})`] : []),
  ];
  return parts.length > 0 ? parts.join(', ') : 'none';
}

const answers = (a: BlackBoxAccess) =>
  a.outputs === 'labels' ? 'labels only' : a.outputs === 'scores' ? 'scores' : 'unknown';

/** The banner under the title; empty for white-box results. */
export function accessBanner(results: ReportResults): string {
  const a = blackBoxAccess(results);
  if (a === null) return '';
  // Stages stopped by the same refusal (a blocked key refuses every later stage) share a line.
  const stopped = new Map<string, AccessStage[]>();
  for (const s of a.stages.filter((s) => s.status === 'stopped')) {
    const note = s.note ?? '';
    stopped.set(note, [...(stopped.get(note) ?? []), s]);
  }
  const items = [
    `<li>Guards the endpoint reports: ${escapeHtml(describeGuards(a.guards))}${a.adapter ? ` (through the adapter ${escapeHtml(a.adapter)})` : ''}.</li>`,
    ...[...stopped].map(
      ([note, stages]) =>
        `<li>Stopped: ${stages.map((s) => `${escapeHtml(s.stage)} after ${count(s.queries)} queries`).join(', ')} — ${escapeHtml(note)}</li>`,
    ),
    ...(a.abstentions > 0
      ? [
          `<li>${count(a.abstentions)} answers were abstentions (counted as robust, never as correct clean).</li>`,
        ]
      : []),
  ];
  return (
    '<div class="banner neutral" id="black-box" role="note"><p><strong>Black-box audit</strong> of ' +
    `<code>${escapeHtml(a.url)}</code>: only the endpoint's answers were used — no weights, no gradients. ` +
    `${count(a.queries)} of a budget of ${count(a.budget)} queries, in ${count(a.requests)} requests ` +
    `(${escapeHtml(String(a.waitedSeconds))} s waited out on Retry-After); the endpoint answers ${answers(a)}. ` +
    'Query attacks within a budget give upper bounds on robust accuracy: a white-box evaluation of ' +
    `the same model is stronger.</p><ul>${items.join('')}</ul></div>`
  );
}

/** Every attack cell of every target: robust accuracy, success, perturbation and cost. */
export function attackTable(results: ReportResults): string {
  const rows = results.targets.flatMap((t) =>
    t.attacks.map(
      (c) =>
        `<tr><td>${escapeHtml(t.id)}</td><td>${escapeHtml(c.attack)}</td>` +
        `<td>${c.whiteBox ? 'white-box' : c.kind === 'square' ? 'score-based' : 'decision-based'}</td>` +
        `<td>${escapeHtml(normName(c.norm))} ε=${escapeHtml(formatEps(c.eps))}</td>` +
        `<td class="num">${pct(c.robustAccuracy)}</td><td class="num">${pct(c.attackSuccessRate)}</td>` +
        `<td class="num">${ratio(c.medianPerturbation)}</td><td class="num">${count(c.queries)}</td>` +
        `<td class="num">${duration(c.seconds)}</td></tr>`,
    ),
  );
  if (rows.length === 0) return '<p class="empty">No attack ran to the end.</p>';
  return (
    '<table class="data attacks"><thead><tr><th>target</th><th>attack</th><th>access</th><th>budget</th>' +
    '<th class="num">robust accuracy</th><th class="num">success rate</th><th class="num">median ‖δ‖</th>' +
    `<th class="num">queries</th><th class="num">time</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

/** `403 code: ` for a refusal its note does not already name, else nothing. */
const refusalOf = (s: AccessStage) =>
  s.refusal && !(s.note ?? '').includes(s.refusal.code)
    ? `${s.refusal.status} ${s.refusal.code}: `
    : '';

/** The audit's stages: status, queries against the share, and the note or refusal. */
export function stagesTable(results: ReportResults): string {
  const a = blackBoxAccess(results);
  if (a === null || a.stages.length === 0) return '';
  const rows = a.stages.map(
    (s) =>
      `<tr class="stage-${escapeHtml(s.status)}"><td>${escapeHtml(s.stage)}</td><td>${escapeHtml(s.status)}</td>` +
      `<td class="num">${count(s.queries)} / ${count(s.share)}</td><td class="num">${duration(s.seconds)}</td>` +
      `<td>${escapeHtml(refusalOf(s))}${escapeHtml(s.note ?? '')}</td></tr>`,
  );
  return (
    '<table class="data stages"><thead><tr><th>stage</th><th>status</th><th class="num">queries / share</th>' +
    `<th class="num">time</th><th>note</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}

/**
 * The label-only membership signals of an audit, in the columns of the privacy table, with
 * the facts they rest on: which examples are assumed members, and no calibrated threshold.
 */
export function blackBoxMembership(results: ReportResults): string {
  const p = results.privacy?.membership;
  if (!p || p.labelOnly.length === 0) return '';
  const facts =
    `<p>Assumed members: the first ${p.target.members} examples of ${escapeHtml(p.dataset)}; non-members: ` +
    `the ${p.pool - p.target.members} test examples. The endpoint classifies ${pct(p.target.trainAccuracy)} ` +
    `of the assumed members and ${pct(p.target.testAccuracy)} of the non-members correctly. A signal means a ` +
    'leak only if the assumed members really are the training data. There are no reference models, so ' +
    'no threshold is calibrated: the balanced accuracy is the best any threshold could reach.</p>';
  const rows = p.labelOnly.map(
    (a) =>
      `<tr><td>${escapeHtml(a.attack)} <span class="muted">(${a.candidates} candidates, ${ratio(a.queries)} queries each)</span></td>` +
      `<td class="num">${pct(a.metrics.tprAt['0.001'])}</td><td class="num">${pct(a.metrics.tprAt['0.01'])}</td>` +
      `<td class="num">${a.metrics.auc.toFixed(3)}</td><td class="num">${pct(a.metrics.balancedAccuracy)}</td>` +
      `<td class="num">${a.seconds.toFixed(1)} s</td></tr>`,
  );
  return (
    `${facts}<table class="privacy"><thead><tr><th>label-only signal</th><th class="num">TPR at 0.1% FPR</th>` +
    '<th class="num">TPR at 1% FPR</th><th class="num">AUC</th><th class="num">balanced accuracy</th>' +
    `<th class="num">time</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
  );
}
