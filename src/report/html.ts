/**
 * `renderReport`: one self-contained HTML page from `results.json` — styles, vega's runtime, the
 * compiled charts and the example images are all inlined, and a Content-Security-Policy forbids
 * the page any network access, so it opens the same from a mail attachment as from a CI artefact.
 * Results `parry audit` wrote (an `access` of mode 'black-box') get a banner saying so under the
 * title, a table of the attacks and the audit's stages, and their own membership facts.
 */
import {
  accessBanner,
  attackTable,
  blackBoxAccess,
  blackBoxMembership,
  type ReportResults,
  stagesTable,
} from './access-section.js';
import { certifiedNorms, certifiedTables } from './certified-section.js';
import { certifiedCharts, robustnessCharts, tradeOffCharts } from './charts.js';
import { fairnessCharts, fairnessSummary } from './fairness-section.js';
import { escapeHtml, jsonForScript } from './format.js';
import { gallery } from './gallery-section.js';
import { generalisationCharts } from './generalisation.js';
import {
  dpaCharts,
  dpaTable,
  poisoningCharts,
  poisoningTable,
  reversedTriggers,
} from './poisoning-section.js';
import {
  inversionGallery,
  privacyCharts,
  privacyTable,
  stealingCharts,
  stealingTable,
} from './privacy-section.js';
import {
  banner,
  configBlock,
  headlineTable,
  honestyTable,
  notesList,
  runFacts,
} from './sections.js';
import { REPORT_CSS } from './style.js';
import { type Chart, vegaRuntime } from './vega.js';

export interface ReportOptions {
  /** The page's title; defaults to `parry evaluation — <data set>` (`parry audit — <url>`). */
  title?: string;
}

/** No network: images only from data: URIs, scripts and styles only inline (vega compiles expressions with `Function`, hence 'unsafe-eval'). */
const CSP =
  "default-src 'none'; img-src data:; style-src 'unsafe-inline'; " +
  "script-src 'unsafe-inline' 'unsafe-eval'";

/** Draws every chart with vega's svg renderer; marks `body[data-charts]` when all are done. */
const BOOT = `
(function () {
  var jobs = [];
  document.querySelectorAll('[data-chart]').forEach(function (el) {
    var fail = function (e) {
      el.textContent = '';
      var p = document.createElement('p');
      p.className = 'chart-error';
      p.textContent = 'This chart could not be drawn: ' + (e && e.message ? e.message : e);
      el.appendChild(p);
      console.error(e);
    };
    try {
      var spec = JSON.parse(document.getElementById(el.id + '-spec').textContent);
      var view = new vega.View(vega.parse(spec), { renderer: 'svg', container: el, hover: true });
      jobs.push(view.runAsync().catch(fail));
    } catch (e) {
      fail(e);
    }
  });
  Promise.all(jobs).then(function () { document.body.setAttribute('data-charts', 'ready'); });
})();
`;

interface Section {
  id: string;
  heading: string;
  body: string;
}

function chartBlocks(charts: Chart[], counter: { n: number }): string {
  return charts
    .map((c) => {
      const id = `chart-${counter.n++}`;
      return (
        `<figure class="chart"><div class="vega" id="${id}" data-chart role="img" aria-label="${escapeHtml(c.title)}"></div>` +
        `<figcaption class="caption">${escapeHtml(c.caption)}</figcaption></figure>` +
        `<script type="application/json" id="${id}-spec">${jsonForScript(c.vega)}</script>`
      );
    })
    .join('\n');
}

function sections(results: ReportResults): Section[] {
  const counter = { n: 0 };
  const charts = (list: Chart[], empty: string) =>
    list.length > 0 ? chartBlocks(list, counter) : `<p class="empty">${escapeHtml(empty)}</p>`;
  const blackBox = blackBoxAccess(results) !== null;
  const hasGroups = results.targets.some(
    (t) => t.fairness.perGroup && t.fairness.perGroup.length > 0,
  );
  return [
    {
      id: 'headline',
      heading: 'Headline results',
      body:
        '<p>Clean accuracy; the per-example worst case over every attack at each ε, an upper bound ' +
        'on true robust accuracy; ' +
        (certifiedNorms(results).length > 0
          ? 'beneath it, where a certificate was computed at that ε, the best certified accuracy ' +
            '(<span class="muted">cert.</span>, by IBP, CROWN or RS = randomized smoothing), a lower bound; '
          : '') +
        'and what the evaluation cost. Bold: the best target in a column.</p>' +
        headlineTable(results),
    },
    ...(blackBox
      ? [
          {
            id: 'attacks',
            heading: 'Attacks and audit stages',
            body:
              '<p>Each attack on the examples the endpoint classifies correctly, within the radius ε; ' +
              'robust accuracy is over every example (a misclassified one counts as broken).</p>' +
              attackTable(results) +
              stagesTable(results),
          },
        ]
      : []),
    {
      id: 'curves',
      heading: 'Robustness curves',
      body: charts(robustnessCharts(results), 'No attacks were run.'),
    },
    {
      id: 'certified',
      heading: 'Certified accuracy',
      body:
        certifiedNorms(results).length === 0
          ? '<p class="empty">No certified results: no target was certified.</p>'
          : certifiedTables(results) +
            `<div class="chart-row">${chartBlocks(certifiedCharts(results), counter)}</div>`,
    },
    {
      id: 'trade-off',
      heading: 'Trade-off',
      body: charts(
        tradeOffCharts(results),
        'No attacks were run, so there is no trade-off to show.',
      ),
    },
    {
      id: 'generalisation',
      heading: 'Generalisation',
      body: charts(generalisationCharts(results), 'No attacks were run.'),
    },
    {
      id: 'fairness',
      heading: 'Fairness',
      body:
        `<div class="chart-row">${charts(fairnessCharts(results), 'No per-class results.')}</div>` +
        (hasGroups
          ? ''
          : '<p class="empty">No groups were defined in the config: per-class results only.</p>') +
        fairnessSummary(results),
    },
    ...(results.poisoning
      ? [
          {
            id: 'poisoning',
            heading: 'Poisoning',
            body:
              `<p>Training-set poisoning on ${escapeHtml(results.poisoning.dataset)}: each recipe's poisoned set trained on ` +
              `(${escapeHtml(results.poisoning.train.arch)}, ${results.poisoning.train.epochs} epochs, seed ${results.poisoning.train.seed}) ` +
              `and measured on ${results.poisoning.testExamples} test examples — clean accuracy and the attack success rate ` +
              '(ASR: triggered test examples of other classes classified as the target) — before and after each defence. ' +
              'Data inspections retrain on the set without what they flagged.</p>' +
              poisoningTable(results) +
              charts(poisoningCharts(results), 'No data inspection ran.') +
              reversedTriggers(results) +
              dpaTable(results) +
              (dpaCharts(results).length > 0 ? chartBlocks(dpaCharts(results), counter) : ''),
          },
        ]
      : []),
    ...(results.privacy
      ? [
          {
            id: 'privacy',
            heading: 'Privacy',
            body:
              (blackBox ? blackBoxMembership(results) : privacyTable(results)) +
              (results.privacy.membership && !blackBox ? charts(privacyCharts(results), '') : '') +
              stealingTable(results) +
              (results.privacy.stealing.length > 0 ? charts(stealingCharts(results), '') : '') +
              inversionGallery(results),
          },
        ]
      : []),
    { id: 'honesty', heading: 'Honesty checks', body: honestyTable(results) },
    { id: 'examples', heading: 'Examples', body: gallery(results) },
    { id: 'notes', heading: 'Notes', body: notesList(results) },
    { id: 'config', heading: 'Config', body: configBlock(results) },
  ];
}

/**
 * The HTML report of an evaluation, as one string: a page a person can open offline and read top
 * to bottom — honesty banner, headline table, charts, fairness, checks, examples, notes, config.
 */
export function renderReport(results: ReportResults, options: ReportOptions = {}): string {
  const access = blackBoxAccess(results);
  const title =
    options.title ??
    (access ? `parry audit — ${access.url}` : `parry evaluation — ${results.dataset.name}`);
  const parts = sections(results);
  const toc = parts.map((s) => `<a href="#${s.id}">${escapeHtml(s.heading)}</a>`).join('');
  const body = parts
    .map((s) => `<section id="${s.id}"><h2>${escapeHtml(s.heading)}</h2>\n${s.body}\n</section>`)
    .join('\n');
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
${accessBanner(results)}
${runFacts(results)}
${banner(results)}
<nav class="toc">${toc}</nav>
<noscript><p class="empty">The charts need JavaScript; the tables hold the same numbers.</p></noscript>
</header>
${body}
<footer>Generated by parry from results.json (format version ${escapeHtml(results.version)}).</footer>
</main>
<script>${vegaRuntime()}</script>
<script>${BOOT}</script>
</body>
</html>
`;
}
