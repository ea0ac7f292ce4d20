/**
 * The report's charts, as Vega-Lite specs built from `EvaluationResults`: robustness curves,
 * certified accuracy, the clean/robust trade-off and the generalisation matrix. Every accuracy
 * axis runs from 0 to 100% so charts compare at a glance; every mark has a tooltip.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { EvaluationResults, Norm } from '../evaluate/results.js';
import { certifiedNorms } from './certified-section.js';
import { attackNames, epsGrid, formatEps, normName } from './format.js';
import { type Chart, chart, EPS_PANELS, targetPanels } from './vega.js';

export const WORST = 'worst case';
const CLEAN = 'clean (no attack)';
/** Colours for attacks (tableau10 without its grey), then near-black for the worst case. */
const ATTACK_COLORS = [
  '#4c78a8',
  '#f58518',
  '#54a24b',
  '#e45756',
  '#72b7b2',
  '#b279a2',
  '#eeca3b',
  '#9d755d',
  '#ff9da6',
];
/** Colours for targets (dark2), fixed by a target's position so every chart agrees. */
const TARGET_COLORS = [
  '#1b9e77',
  '#d95f02',
  '#7570b3',
  '#e7298a',
  '#66a61e',
  '#e6ab02',
  '#a6761d',
  '#666666',
];

const accuracyAxis = (title: string) => ({
  type: 'quantitative' as const,
  scale: { domain: [0, 1] },
  axis: { format: '.0%', title },
});

const epsTitle = (norm: Norm) => `ε (${normName(norm)} radius)`;

/** Colour by target; the legend lists only `shown`, each in its colour from the whole report. */
function targetColor(
  results: EvaluationResults,
  shown: string[] = results.targets.map((t) => t.id),
) {
  const ids = results.targets.map((t) => t.id);
  return {
    field: 'target',
    type: 'nominal' as const,
    title: 'target',
    scale: {
      domain: shown,
      range: shown.map((id) => TARGET_COLORS[ids.indexOf(id) % TARGET_COLORS.length]),
    },
  };
}

/** Robust accuracy vs eps, one chart per norm, one panel per target, a line per attack. */
export function robustnessCharts(results: EvaluationResults): Chart[] {
  const attacks = attackNames(results);
  const domain = [...attacks, WORST, CLEAN];
  const range = [...attacks.map((_, i) => ATTACK_COLORS[i % ATTACK_COLORS.length]), '#222', '#999'];
  return epsGrid(results).map(({ norm }) => {
    const rows: Record<string, unknown>[] = [];
    for (const t of results.targets) {
      rows.push({ target: t.id, series: CLEAN, kind: 'clean', accuracy: t.clean.accuracy });
      for (const c of t.attacks.filter((c) => c.norm === norm)) {
        rows.push({
          target: t.id,
          series: c.attack,
          kind: 'attack',
          eps: c.eps,
          accuracy: c.robustAccuracy,
          success: c.attackSuccessRate,
          box: c.whiteBox ? 'white-box' : 'black-box',
        });
      }
      for (const w of t.worstCase.filter((w) => w.norm === norm)) {
        rows.push({
          target: t.id,
          series: WORST,
          kind: 'worst',
          eps: w.eps,
          accuracy: w.robustAccuracy,
        });
      }
    }
    const color = {
      field: 'series',
      type: 'nominal' as const,
      title: null,
      scale: { domain, range },
    };
    const spec: TopLevelSpec = {
      data: { values: rows },
      facet: targetPanels(
        results.targets.map((t) => t.id),
        'column',
      ),
      spec: {
        width: 230,
        height: 190,
        layer: [
          {
            transform: [{ filter: "datum.kind === 'clean'" }],
            mark: { type: 'rule', strokeDash: [5, 4], strokeWidth: 1.5 },
            encoding: {
              y: { field: 'accuracy', ...accuracyAxis('robust accuracy') },
              color,
              tooltip: [
                { field: 'target', title: 'target' },
                { field: 'accuracy', title: 'clean accuracy', format: '.1%' },
              ],
            },
          },
          {
            transform: [{ filter: "datum.kind !== 'clean'" }],
            mark: { type: 'line', point: true },
            encoding: {
              x: {
                field: 'eps',
                type: 'quantitative',
                title: epsTitle(norm),
                scale: { zero: true },
              },
              y: { field: 'accuracy', ...accuracyAxis('robust accuracy') },
              color,
              strokeWidth: { condition: { test: "datum.kind === 'worst'", value: 3 }, value: 1.6 },
              tooltip: [
                { field: 'target', title: 'target' },
                { field: 'series', title: 'attack' },
                { field: 'box', title: 'access' },
                { field: 'eps', title: 'ε', format: '.4~g' },
                { field: 'accuracy', title: 'robust accuracy', format: '.1%' },
                { field: 'success', title: 'success rate', format: '.1%' },
              ],
            },
          },
        ],
      },
    };
    return chart(
      `Robust accuracy vs ε — ${normName(norm)}`,
      'One panel per target, one line per attack; the thick dark line is the per-example worst ' +
        'case over all attacks, the dashed line the clean accuracy. Lower is a stronger attack.',
      spec,
    );
  });
}

/** Certified accuracy vs radius, one chart per norm; colour = target, dash = method. */
export function certifiedCharts(results: EvaluationResults): Chart[] {
  return certifiedNorms(results).map((norm) => {
    const rows = results.targets.flatMap((t) =>
      t.certified
        .filter((c) => c.norm === norm)
        .flatMap((c) =>
          c.curve.map((p) => ({
            target: t.id,
            method: c.method === 'smoothing' ? 'randomized smoothing' : c.method.toUpperCase(),
            radius: p.radius,
            accuracy: p.accuracy,
          })),
        ),
    );
    const spec: TopLevelSpec = {
      data: { values: rows },
      width: 340,
      height: 220,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'radius', type: 'quantitative', title: `certified radius (${normName(norm)})` },
        y: { field: 'accuracy', ...accuracyAxis('certified accuracy') },
        color: targetColor(results, [...new Set(rows.map((r) => r.target))]),
        strokeDash: { field: 'method', type: 'nominal', title: 'method' },
        detail: { field: 'method', type: 'nominal' },
        tooltip: [
          { field: 'target', title: 'target' },
          { field: 'method', title: 'method' },
          { field: 'radius', title: 'radius', format: '.4~g' },
          { field: 'accuracy', title: 'certified accuracy', format: '.1%' },
        ],
      },
    };
    return chart(
      `Certified accuracy vs radius — ${normName(norm)}`,
      'Fraction of examples classified correctly with a guarantee that no perturbation within ' +
        'the radius changes the prediction. A lower bound on robust accuracy.',
      spec,
    );
  });
}

/** Clean vs worst-case robust accuracy, one chart per norm, one panel per eps, a point per target. */
export function tradeOffCharts(results: EvaluationResults): Chart[] {
  return epsGrid(results).map(({ norm, eps }) => {
    const rows: Record<string, unknown>[] = [];
    for (const e of eps) {
      const panel = `ε = ${formatEps(e)}`;
      rows.push({ panel, eps: e, kind: 'diagonal', clean: 0, robust: 0 });
      rows.push({ panel, eps: e, kind: 'diagonal', clean: 1, robust: 1 });
      for (const t of results.targets) {
        const w = t.worstCase.find((w) => w.norm === norm && w.eps === e);
        if (!w) continue;
        rows.push({
          panel,
          eps: e,
          kind: 'target',
          target: t.id,
          clean: t.clean.accuracy,
          robust: w.robustAccuracy,
        });
      }
    }
    const spec: TopLevelSpec = {
      data: { values: rows },
      facet: EPS_PANELS,
      spec: {
        width: 190,
        height: 190,
        layer: [
          {
            transform: [{ filter: "datum.kind === 'diagonal'" }],
            mark: { type: 'line', color: '#bbb', strokeDash: [4, 4], strokeWidth: 1 },
            encoding: {
              x: { field: 'clean', ...accuracyAxis('clean accuracy') },
              y: { field: 'robust', ...accuracyAxis('worst-case robust accuracy') },
            },
          },
          {
            transform: [{ filter: "datum.kind === 'target'" }],
            mark: { type: 'point', size: 110, filled: true, opacity: 0.9 },
            encoding: {
              x: { field: 'clean', ...accuracyAxis('clean accuracy') },
              y: { field: 'robust', ...accuracyAxis('worst-case robust accuracy') },
              color: targetColor(results),
              shape: { field: 'target', type: 'nominal', title: 'target' },
              tooltip: [
                { field: 'target', title: 'target' },
                { field: 'eps', title: 'ε', format: '.4~g' },
                { field: 'clean', title: 'clean accuracy', format: '.1%' },
                { field: 'robust', title: 'worst-case robust accuracy', format: '.1%' },
              ],
            },
          },
        ],
      },
    };
    return chart(
      `Clean vs robust accuracy — ${normName(norm)}`,
      'One point per target; up and to the right is better. The dashed diagonal is robust = ' +
        'clean: the distance below it is what the attack takes away.',
      spec,
    );
  });
}
