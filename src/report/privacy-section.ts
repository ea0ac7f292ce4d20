/**
 * The report's privacy section: the target's train/test gap, then per output (raw scores, and
 * each output defence the attacks were re-run behind) every membership attack's AUC, best
 * balanced accuracy and TPR at 0.1% and 1% FPR — the low-FPR numbers first, since an attack that
 * is confident about a few members is the one that matters (Carlini et al. 2022) — the label-only
 * signals, and ROC curves on log–log axes; then model stealing — the thief's accuracy and its
 * agreement with the victim against the query budget, per method and victim output — and MI-Face
 * reconstructions beside the class means. Every string from the results goes through `escapeHtml`.
 */
import type { TopLevelSpec } from 'vega-lite';
import { membershipLabel } from '../attacks/privacy/membership/index.js';
import type { EvaluationResults } from '../evaluate/results.js';
import { escapeHtml, pct } from './format.js';
import { image } from './gallery-section.js';
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
  const p = results.privacy?.membership;
  if (!p) return '';
  const m = p.config.models;
  const facts =
    `<p>Target: ${escapeHtml(m.arch)} trained ${m.epochs} epochs on ${p.target.members} of ${p.pool} pool examples from ${escapeHtml(p.dataset)} ` +
    `(train accuracy ${pct(p.target.trainAccuracy)}, test accuracy ${pct(p.target.testAccuracy)}); ${m.referenceModels} reference models on other random halves ` +
    `(seed ${m.seed}); ${p.queries} queries per example; ${p.population} population samples seen by no model. ` +
    `${trainingFact(p.target.training)}` +
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
      rows.push(
        `<tr>${first}<td>${escapeHtml(membershipLabel(a.attack, a.options))}</td>${cells(a)}</tr>`,
      );
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
  // What the attacks said about their own fits (few reference models, floored variances).
  const notes = [
    ...p.outputs.flatMap((o) =>
      o.attacks.flatMap((a) =>
        a.warnings.map((w) => `${o.output}, ${membershipLabel(a.attack, a.options)}: ${w}`),
      ),
    ),
    ...p.labelOnly.flatMap((a) => a.warnings.map((w) => `labels, ${a.attack}: ${w}`)),
  ];
  const noteList =
    notes.length === 0
      ? ''
      : `<ul class="muted">${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`;
  return `${facts}<table class="privacy"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>${noteList}`;
}

/** How every model trained, when not plainly: DP-SGD with the target's (ε, δ), or the method. */
function trainingFact(training: Record<string, unknown> | undefined): string {
  const t = training ?? {};
  if (t.defense === 'dp-sgd') {
    const eps = (t.epsilon as number).toFixed(2);
    return `Every model trained with DP-SGD (σ ${t.noise_multiplier}, C ${t.max_grad_norm}): the target's ε = ${eps} at δ = ${t.delta}. `;
  }
  if (typeof t.defense === 'string') return `Every model trained with ${escapeHtml(t.defense)}. `;
  return '';
}

/** One log–log ROC chart per output (label-only signals with the raw one), chance as a line. */
export function privacyCharts(results: EvaluationResults): Chart[] {
  const p = results.privacy?.membership;
  if (!p) return [];
  const floor = 1e-4;
  return p.outputs.map((o, oi) => {
    const attacks = oi === 0 ? [...o.attacks, ...p.labelOnly] : o.attacks;
    const rows = attacks.flatMap((a) =>
      a.metrics.roc.fpr.flatMap((fpr, k) => {
        const tpr = a.metrics.roc.tpr[k];
        // Log axes: points at 0 are drawn at the floor.
        const series = membershipLabel(a.attack, a.options);
        return fpr <= 0 ? [] : [{ series, fpr, tpr: Math.max(tpr, floor) }];
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

/** The stealing table: per model, method and victim output, every budget's numbers. */
export function stealingTable(results: EvaluationResults): string {
  const rows = results.privacy?.stealing ?? [];
  if (rows.length === 0) return '';
  const head =
    '<tr><th>model</th><th>method</th><th>victim output</th><th class="num">queries</th>' +
    '<th class="num">thief accuracy</th><th class="num">agreement</th><th class="num">PGD transfer</th>' +
    '<th class="num">victim accuracy</th><th class="num">time</th></tr>';
  const body = rows.flatMap((r) =>
    r.curve.map(
      (c) =>
        `<tr><td>${escapeHtml(r.model)}</td><td>${escapeHtml(r.method)}</td><td>${escapeHtml(r.output)}</td>` +
        `<td class="num">${c.queriesUsed}</td><td class="num">${pct(c.accuracy)}</td><td class="num">${pct(c.agreement)}</td>` +
        `<td class="num">${c.transferRate === null ? '—' : pct(c.transferRate)}</td><td class="num">${pct(c.victimAccuracy)}</td>` +
        `<td class="num">${c.seconds.toFixed(1)} s</td></tr>`,
    ),
  );
  return `<table class="stealing"><thead>${head}</thead><tbody>${body.join('')}</tbody></table>`;
}

/** Thief accuracy and agreement against the budget (log axis), one line per method · output. */
export function stealingCharts(results: EvaluationResults): Chart[] {
  const rows = results.privacy?.stealing ?? [];
  if (rows.length === 0) return [];
  const values = rows.flatMap((r) =>
    r.curve.flatMap((c) => [
      {
        model: r.model,
        series: `${r.method} · ${r.output}`,
        metric: 'thief accuracy',
        budget: c.budget,
        value: c.accuracy,
      },
      {
        model: r.model,
        series: `${r.method} · ${r.output}`,
        metric: 'agreement with the victim',
        budget: c.budget,
        value: c.agreement,
      },
    ]),
  );
  const spec: TopLevelSpec = {
    data: { values },
    facet: {
      column: { field: 'metric', type: 'nominal', title: null },
      row: { field: 'model', type: 'nominal', title: null },
    },
    spec: {
      width: 260,
      height: 200,
      mark: { type: 'line', point: true },
      encoding: {
        x: {
          field: 'budget',
          type: 'quantitative',
          title: 'victim queries',
          scale: { type: 'log' },
        },
        y: { field: 'value', type: 'quantitative', title: null, scale: { domain: [0, 1] } },
        color: { field: 'series', type: 'nominal', title: 'method · victim output' },
        tooltip: [
          { field: 'series', title: 'method · output' },
          { field: 'budget', title: 'queries' },
          { field: 'value', title: 'value', format: '.1%' },
        ],
      },
    },
  };
  return [
    chart(
      'Model stealing — thief accuracy and agreement against the query budget',
      'Each point is a thief trained from scratch on that many victim answers; an output defence that keeps the argmax leaves label-only thieves (copycat, knockoff on hard labels) free to learn.',
      spec,
    ),
  ];
}

/** MI-Face reconstructions per model, each beside its class mean, with the scores. */
export function inversionGallery(results: EvaluationResults): string {
  const rows = results.privacy?.inversion ?? [];
  return rows
    .map((r) => {
      const recognisable = r.scores.filter((s) => s.nearestClass === s.class).length;
      const cells = r.scores.map((s, i) => {
        const caption = `class ${s.class}: confidence ${pct(s.confidence)}, distance to its mean ${s.distanceOwn.toFixed(2)} vs ${s.distanceOthers.toFixed(2)} to the others${s.nearestClass === s.class ? ' — nearest its own mean' : `; nearest class ${s.nearestClass}`}`;
        return (
          `<div class="inversion">${image(r.images[i], `reconstruction of class ${s.class}`, escapeHtml(caption))}` +
          `${r.means[i] ? image(r.means[i], `mean of class ${s.class}`, 'class mean') : ''}</div>`
        );
      });
      return (
        `<h3>${escapeHtml(r.model)} — MI-Face</h3><p>${recognisable} of ${r.scores.length} reconstructions are nearer their own class mean than any other ` +
        `(${r.seconds.toFixed(1)} s).</p><div class="inversions">${cells.join('')}</div>`
      );
    })
    .join('\n');
}
