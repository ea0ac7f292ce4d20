/**
 * The report's privacy section: the target's train/test gap, then per output (raw scores, and
 * each output defence the attacks were re-run behind) every membership attack's AUC, best
 * balanced accuracy and TPR at 0.1% and 1% FPR — the low-FPR numbers first, since an attack that
 * is confident about a few members is the one that matters (Carlini et al. 2022) — the label-only
 * signals, and ROC curves on log–log axes. Every string from the results goes through `escapeHtml`.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { EvaluationResults } from '../evaluate/results.js';
import { escapeHtml, pct } from './format.js';
import { type Chart, chart } from './vega.js';

interface Row {
  attack: string;
  metrics: { auc: number; balancedAccuracy: number; tprAt: Record<string, number> };
  seconds: number;
}

const cells = (a: Row) =>
  `<td class="num">${pct(a.metrics.tprAt['0.001'])}</td><td class="num">${pct(a.metrics.tprAt['0.01'])}</td>` +
  `<td class="num">${a.metrics.auc.toFixed(3)}</td><td class="num">${pct(a.metrics.balancedAccuracy)}</td>` +
  `<td class="num">${a.seconds.toFixed(1)} s</td>`;

/** The facts line and the table of every attack under every output, label-only rows last. */
export function privacyTable(results: EvaluationResults): string {
  const p = results.privacy;
  if (!p) return '';
  const m = p.config.models;
  const facts =
    `<p>Target: ${escapeHtml(m.arch)} trained ${m.epochs} epochs on ${p.target.members} of ${p.pool} pool examples from ${escapeHtml(p.dataset)} ` +
    `(train accuracy ${pct(p.target.trainAccuracy)}, test accuracy ${pct(p.target.testAccuracy)}); ${m.referenceModels} reference models on other random halves ` +
    `(seed ${m.seed}); ${p.queries} queries per example; ${p.population} population samples seen by no model. ` +
    'Thresholds and fits come from the reference models only; behind an output defence the attacker applies the same defence to its references.</p>';
  const head =
    '<tr><th>output</th><th>attack</th><th class="num">TPR at 0.1% FPR</th><th class="num">TPR at 1% FPR</th>' +
    '<th class="num">AUC</th><th class="num">balanced accuracy</th><th class="num">time</th></tr>';
  const rows: string[] = [];
  for (const o of p.outputs) {
    o.attacks.forEach((a, i) => {
      const first =
        i === 0
          ? `<td rowspan="${o.attacks.length}"><strong>${escapeHtml(o.output)}</strong></td>`
          : '';
      rows.push(`<tr>${first}<td>${escapeHtml(a.attack)}</td>${cells(a)}</tr>`);
    });
  }
  p.labelOnly.forEach((a, i) => {
    const first =
      i === 0
        ? `<td rowspan="${p.labelOnly.length}"><strong>labels (label-only attacker)</strong></td>`
        : '';
    rows.push(
      `<tr>${first}<td>${escapeHtml(a.attack)} <span class="muted">(${a.candidates} candidates, ${a.queries} queries each)</span></td>${cells(a)}</tr>`,
    );
  });
  return `${facts}<table class="privacy"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

/** One log–log ROC chart per output (label-only signals with the raw one), chance as a line. */
export function privacyCharts(results: EvaluationResults): Chart[] {
  const p = results.privacy;
  if (!p) return [];
  const floor = 1e-4;
  return p.outputs.map((o, oi) => {
    const attacks = oi === 0 ? [...o.attacks, ...p.labelOnly] : o.attacks;
    const rows = attacks.flatMap((a) =>
      a.metrics.roc.fpr.flatMap((fpr, k) => {
        const tpr = a.metrics.roc.tpr[k];
        // Log axes: points at 0 are drawn at the floor.
        return fpr <= 0 ? [] : [{ series: a.attack, fpr, tpr: Math.max(tpr, floor) }];
      }),
    );
    const chance = [floor, 1e-3, 1e-2, 1e-1, 1].map((v) => ({ series: 'chance', fpr: v, tpr: v }));
    const spec: TopLevelSpec = {
      data: { values: [...rows, ...chance] },
      width: 340,
      height: 280,
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: {
          field: 'fpr',
          type: 'quantitative',
          title: 'false-positive rate (non-members called members)',
          scale: { type: 'log', domain: [floor, 1] },
        },
        y: {
          field: 'tpr',
          type: 'quantitative',
          title: 'true-positive rate (members found)',
          scale: { type: 'log', domain: [floor, 1] },
        },
        color: { field: 'series', type: 'nominal', title: 'attack' },
        strokeDash: {
          condition: { test: "datum.series === 'chance'", value: [4, 4] },
          value: [1, 0],
        },
        tooltip: [
          { field: 'series', title: 'attack' },
          { field: 'fpr', title: 'FPR', format: '.3%' },
          { field: 'tpr', title: 'TPR', format: '.2%' },
        ],
      },
    };
    return chart(
      `Membership inference — ROC, output: ${o.output}`,
      'Members found against non-members wrongly flagged, on log axes so the low-FPR region (where an ' +
        'attack is confident) is visible; the dashed diagonal is chance.',
      spec,
    );
  });
}
