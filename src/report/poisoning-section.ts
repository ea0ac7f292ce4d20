/**
 * The report's poisoning section: per recipe, the poisoned model's clean accuracy and attack
 * success rate (ASR) beside the clean reference's, and the same after each defence; how each data
 * inspection found the poisons (precision, recall, FPR, AUC, and ROC curves); Neural Cleanse's
 * anomaly indices and reversed triggers. Every string from the results goes through `escapeHtml`.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { EvaluationResults, Measured, PoisonRecipeResult } from '../evaluate/results.js';
import { escapeHtml, pct } from './format.js';
import { image } from './gallery-section.js';
import { type Chart, chart } from './vega.js';

const asrCell = (m: Measured | null) =>
  m === null ? '—' : m.asr === null ? '<span class="muted">n/a</span>' : pct(m.asr);

function detail(d: PoisonRecipeResult['defenses'][number]): string {
  const parts: string[] = [];
  if (d.skipped) parts.push(`skipped: ${d.skipped}`);
  if (d.detection) {
    const s = d.detection;
    parts.push(
      `flagged ${s.flagged}: precision ${pct(s.precision)}, recall ${pct(s.recall)}, FPR ${pct(s.falsePositiveRate)}, AUC ${Number.isNaN(s.auc) ? '—' : s.auc.toFixed(3)}`,
    );
  }
  if (d.scan) {
    const flagged = d.scan.flaggedClasses;
    const top = [...d.scan.perClass].sort((a, b) => b.anomalyIndex - a.anomalyIndex)[0];
    parts.push(
      `${flagged.length === 0 ? 'no class flagged' : `flagged class ${flagged.join(', ')}`}; highest anomaly index ${top ? top.anomalyIndex.toFixed(2) : '—'} (class ${top?.class ?? '—'})`,
    );
  }
  if (d.input) {
    parts.push(
      `${pct(d.input.falseAcceptance)} of triggered inputs accepted, ${pct(d.input.falseRejection)} of clean test inputs rejected (threshold set for ${pct(d.input.falseRejectionTarget)} false rejection)`,
    );
  } else if (d.method === 'strip' && !d.skipped) {
    parts.push('no trigger to detect');
  }
  if (d.pruned)
    parts.push(`pruned ${d.pruned.pruned} of ${d.pruned.channels} channels of ${d.pruned.layer}`);
  return escapeHtml(parts.join('; '));
}

/** The before/after table of every recipe and defence. */
export function poisoningTable(results: EvaluationResults): string {
  const p = results.poisoning;
  if (!p) return '';
  const head =
    '<tr><th>recipe</th><th>defence</th><th class="num">poisoned</th><th class="num">clean accuracy</th>' +
    '<th class="num">ASR</th><th>what the defence found</th></tr>';
  const rows = [
    `<tr><td>none (clean reference)</td><td>—</td><td class="num">0</td><td class="num">${pct(p.reference.cleanAccuracy)}</td><td class="num"><span class="muted">n/a</span></td><td></td></tr>`,
  ];
  for (const r of p.recipes) {
    const span = r.defenses.length + 1;
    rows.push(
      `<tr><td rowspan="${span}"><strong>${escapeHtml(r.id)}</strong><br><span class="muted">${escapeHtml(r.attack)}${r.labelsChanged ? '' : ', labels kept'}${r.targetClass === null ? '' : `, target ${r.targetClass}`}</span></td>` +
        `<td>none</td><td class="num">${r.poisoned} of ${r.examples}</td><td class="num">${pct(r.poisonedModel.cleanAccuracy)}</td><td class="num">${asrCell(r.poisonedModel)}</td><td></td></tr>`,
    );
    for (const d of r.defenses) {
      rows.push(
        `<tr><td>${escapeHtml(d.method)}</td><td class="num"></td>` +
          `<td class="num">${d.after ? pct(d.after.cleanAccuracy) : '—'}</td><td class="num">${asrCell(d.after)}</td><td>${detail(d)}</td></tr>`,
      );
    }
  }
  return `<table class="poisoning"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`;
}

/** One ROC chart of every data inspection over the recipes. */
export function poisoningCharts(results: EvaluationResults): Chart[] {
  const p = results.poisoning;
  if (!p) return [];
  const rows = p.recipes.flatMap((r) =>
    r.defenses.flatMap((d) =>
      d.detection
        ? d.detection.roc.map(([fpr, tpr]) => ({ series: `${r.id} · ${d.method}`, fpr, tpr }))
        : [],
    ),
  );
  if (rows.length === 0) return [];
  const spec: TopLevelSpec = {
    data: { values: rows },
    width: 340,
    height: 260,
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: {
        field: 'fpr',
        type: 'quantitative',
        title: 'false-positive rate (clean examples flagged)',
        scale: { domain: [0, 1] },
      },
      y: {
        field: 'tpr',
        type: 'quantitative',
        title: 'recall (poisons flagged)',
        scale: { domain: [0, 1] },
      },
      color: { field: 'series', type: 'nominal', title: 'recipe · inspection' },
      tooltip: [
        { field: 'series', title: 'recipe · inspection' },
        { field: 'fpr', title: 'FPR', format: '.1%' },
        { field: 'tpr', title: 'recall', format: '.1%' },
      ],
    },
  };
  return [
    chart(
      'Poison detection — ROC',
      'How well each data inspection ranks the poisoned training examples above the clean ones, ' +
        'over every threshold of its suspicion score (the diagonal is chance).',
      spec,
    ),
  ];
}

/** Neural Cleanse's reversed triggers (mask ⊙ pattern) per recipe, the flagged class marked. */
export function reversedTriggers(results: EvaluationResults): string {
  const p = results.poisoning;
  if (!p) return '';
  const blocks = p.recipes.flatMap((r) =>
    r.defenses.flatMap((d) => {
      if (!d.scan) return [];
      const cells = d.scan.perClass.map((c, k) => {
        const caption = `class ${c.class}: L1 ${c.l1.toFixed(1)}, index ${c.anomalyIndex.toFixed(2)}${c.flagged ? ' — flagged' : ''}`;
        const src = d.scan!.triggers[k] ?? '';
        return `<div class="trigger${c.flagged ? ' flagged' : ''}">${image(src, caption, escapeHtml(caption))}</div>`;
      });
      return [
        `<h3>${escapeHtml(r.id)} · ${escapeHtml(d.method)}</h3><div class="triggers">${cells.join('')}</div>`,
      ];
    }),
  );
  return blocks.join('\n');
}

/** DPA's certified accuracy against the number of poisoned training examples, per recipe. */
export function dpaCharts(results: EvaluationResults): Chart[] {
  const recipes = results.poisoning?.recipes.filter((r) => r.dpa) ?? [];
  if (recipes.length === 0) return [];
  const rows = recipes.flatMap((r) =>
    r.dpa!.curve.map((p) => ({ recipe: r.id, size: p.size, accuracy: p.accuracy })),
  );
  const spec: TopLevelSpec = {
    data: { values: rows },
    width: 340,
    height: 220,
    mark: { type: 'line', interpolate: 'step-after', point: true },
    encoding: {
      x: { field: 'size', type: 'quantitative', title: 'poisoned training examples tolerated' },
      y: {
        field: 'accuracy',
        type: 'quantitative',
        title: 'certified accuracy',
        scale: { domain: [0, 1] },
        axis: { format: '.0%' },
      },
      color: { field: 'recipe', type: 'nominal', title: 'recipe' },
      tooltip: [
        { field: 'recipe', title: 'recipe' },
        { field: 'size', title: 'poisons' },
        { field: 'accuracy', title: 'certified accuracy', format: '.1%' },
      ],
    },
  };
  const k = recipes[0].dpa!.k;
  return [
    chart(
      `Deep Partition Aggregation — certified accuracy (k = ${k})`,
      'Share of test examples classified correctly by the vote of k models on hash-partitioned ' +
        'data, with a guarantee that the prediction holds while at most that many training ' +
        'examples are inserted, removed or changed.',
      spec,
    ),
  ];
}

/** One line per recipe with DPA: accuracy and median certified poison size. */
export function dpaTable(results: EvaluationResults): string {
  const recipes = results.poisoning?.recipes.filter((r) => r.dpa) ?? [];
  if (recipes.length === 0) return '';
  const rows = recipes
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.id)}</td><td class="num">${r.dpa!.k}</td><td class="num">${pct(r.dpa!.accuracy)}</td><td class="num">${escapeHtml(r.dpa!.medianCertified)}</td></tr>`,
    )
    .join('');
  return (
    '<table class="dpa"><thead><tr><th>recipe</th><th class="num">k</th><th class="num">DPA accuracy</th>' +
    `<th class="num">median certified poisons</th></tr></thead><tbody>${rows}</tbody></table>`
  );
}
