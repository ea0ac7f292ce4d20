/**
 * The generalisation matrix: does robustness learnt against one threat carry over to the others?
 * Rows are what each target was trained against, columns the attacks (and their worst case) at
 * each eps, cells the robust accuracy, printed on a heatmap.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { EvaluationResults, TargetResults } from '../evaluate/results.js';
import { WORST } from './charts.js';
import { attackNames, epsGrid, formatEps, normName } from './format.js';
import { type Chart, chart, EPS_PANELS } from './vega.js';

/** Row labels of the generalisation matrix: `trainedAgainst`, qualified by id when shared. */
export function trainedAgainstLabels(targets: TargetResults[]): string[] {
  return targets.map((t) => {
    const shared = targets.filter((u) => u.trainedAgainst === t.trainedAgainst).length > 1;
    return shared ? `${t.trainedAgainst} (${t.id})` : t.trainedAgainst;
  });
}

/** Heatmap: rows = what each target was trained against, columns = attack at each eps. */
export function generalisationCharts(results: EvaluationResults): Chart[] {
  const labels = trainedAgainstLabels(results.targets);
  const columns = [...attackNames(results), WORST];
  return epsGrid(results).map(({ norm }) => {
    const rows: Record<string, unknown>[] = [];
    results.targets.forEach((t, i) => {
      const cells = [
        ...t.attacks
          .filter((c) => c.norm === norm)
          .map((c) => ({ attack: c.attack, eps: c.eps, acc: c.robustAccuracy })),
        ...t.worstCase
          .filter((w) => w.norm === norm)
          .map((w) => ({ attack: WORST, eps: w.eps, acc: w.robustAccuracy })),
      ];
      for (const c of cells) {
        rows.push({
          row: labels[i],
          target: t.id,
          attack: c.attack,
          eps: c.eps,
          panel: `ε = ${formatEps(c.eps)}`,
          accuracy: c.acc,
        });
      }
    });
    const spec: TopLevelSpec = {
      data: { values: rows },
      facet: EPS_PANELS,
      spec: {
        width: { step: 58 },
        height: { step: 30 },
        encoding: {
          x: {
            field: 'attack',
            type: 'nominal',
            sort: columns,
            title: null,
            axis: { labelAngle: -35, orient: 'top' },
          },
          y: { field: 'row', type: 'nominal', sort: labels, title: 'trained against' },
        },
        layer: [
          {
            mark: { type: 'rect', stroke: 'white', strokeWidth: 1 },
            encoding: {
              color: {
                field: 'accuracy',
                type: 'quantitative',
                title: 'robust accuracy',
                scale: { domain: [0, 1], scheme: 'blues' },
                legend: { format: '.0%' },
              },
              tooltip: [
                { field: 'target', title: 'target' },
                { field: 'row', title: 'trained against' },
                { field: 'attack', title: 'attack' },
                { field: 'eps', title: 'ε', format: '.4~g' },
                { field: 'accuracy', title: 'robust accuracy', format: '.1%' },
              ],
            },
          },
          {
            mark: { type: 'text', fontSize: 11 },
            encoding: {
              text: { field: 'accuracy', type: 'quantitative', format: '.1%' },
              color: {
                condition: { test: 'datum.accuracy > 0.55', value: 'white' },
                value: '#222',
              },
            },
          },
        ],
      },
    };
    return chart(
      `Generalisation — ${normName(norm)}`,
      'Robust accuracy of each training method (rows) against each attack (columns) at each ε. ' +
        'A defense that only resists the attack it was trained against shows one dark column.',
      spec,
    );
  });
}
