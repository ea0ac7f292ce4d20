/**
 * Certified accuracy in the report's tables: the best certificate at one (norm, eps), shown under
 * the worst-case robust accuracy of the headline (certified ≤ true robust ≤ attacked), and the full
 * curves as one table per norm.
 */
import type {
  CertifiedResult,
  EvaluationResults,
  Norm,
  TargetResults,
} from '../evaluate/results.js';
import { escapeHtml, formatEps, normName, pct } from './format.js';

export const METHOD_NAMES: Record<CertifiedResult['method'], string> = {
  ibp: 'IBP',
  crown: 'CROWN',
  smoothing: 'smoothing',
};

/** Short names for a table cell: RS = randomized smoothing. */
const SHORT_NAMES: Record<CertifiedResult['method'], string> = {
  ibp: 'IBP',
  crown: 'CROWN',
  smoothing: 'RS',
};

/** Every certificate of a target at exactly this norm and radius, best first. */
export function certifiedAt(t: TargetResults, norm: Norm, radius: number) {
  return t.certified
    .filter((c) => c.norm === norm)
    .flatMap((c) =>
      c.curve
        .filter((p) => p.radius === radius)
        .map((p) => ({
          method: METHOD_NAMES[c.method] ?? c.method,
          short: SHORT_NAMES[c.method] ?? c.method,
          accuracy: p.accuracy,
        })),
    )
    .sort((a, b) => b.accuracy - a.accuracy);
}

/** Norms that carry a certificate, in the report's order. */
export function certifiedNorms(results: EvaluationResults): Norm[] {
  return (['linf', 'l2', 'l1'] as Norm[]).filter((n) =>
    results.targets.some((t) => t.certified.some((c) => c.norm === n)),
  );
}

/** Per norm: rows = target × method, columns = every radius of its curves. */
export function certifiedTables(results: EvaluationResults): string {
  return certifiedNorms(results)
    .map((norm) => {
      const rows = results.targets.flatMap((t) =>
        t.certified.filter((c) => c.norm === norm).map((c) => ({ t, c })),
      );
      const radii = [...new Set(rows.flatMap(({ c }) => c.curve.map((p) => p.radius)))].sort(
        (a, b) => a - b,
      );
      const head =
        '<tr><th>target</th><th>method</th>' +
        radii.map((r) => `<th class="num">r=${escapeHtml(formatEps(r))}</th>`).join('') +
        '<th class="num">abstained</th><th class="num">time</th></tr>';
      const body = rows
        .map(({ t, c }) => {
          const cells = radii.map((r) => {
            const p = c.curve.find((q) => q.radius === r);
            return `<td class="num">${p ? pct(p.accuracy) : '—'}</td>`;
          });
          return (
            `<tr><th scope="row">${escapeHtml(t.id)}</th><td>${escapeHtml(METHOD_NAMES[c.method] ?? c.method)}</td>` +
            `${cells.join('')}<td class="num">${pct(c.abstainRate)}</td>` +
            `<td class="num">${Number.isFinite(c.seconds) ? `${c.seconds.toFixed(1)} s` : '—'}</td></tr>`
          );
        })
        .join('\n');
      return (
        `<h3>Certified accuracy, ${normName(norm)}</h3>` +
        `<div class="scroll"><table class="data"><thead>${head}</thead><tbody>${body}</tbody></table></div>`
      );
    })
    .join('\n');
}
