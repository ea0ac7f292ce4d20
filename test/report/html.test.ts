/**
 * The report's HTML as a string: self-contained, escaped, every section present, the headline
 * numbers formatted as the results give them, the honesty banner exactly when a check warns, and
 * empty sections that say so.
 */
import { describe, expect, it } from 'vitest';
import type { EvaluationResults } from '../../src/evaluate/results.js';
import { certifiedCharts, robustnessCharts, tradeOffCharts } from '../../src/report/charts.js';
import { fairnessCharts } from '../../src/report/fairness-section.js';
import { escapeHtml, formatEps, jsonForScript } from '../../src/report/format.js';
import { generalisationCharts } from '../../src/report/generalisation.js';
import { renderReport } from '../../src/report/index.js';
import { makeResults } from './fixture.js';

const HEADINGS = [
  'Headline results',
  'Robustness curves',
  'Certified accuracy',
  'Trade-off',
  'Generalisation',
  'Fairness',
  'Honesty checks',
  'Examples',
  'Notes',
  'Config',
];

/** The text of one `<section id=…>`. */
function section(html: string, id: string): string {
  const start = html.indexOf(`<section id="${id}">`);
  expect(start, `section ${id}`).toBeGreaterThanOrEqual(0);
  return html.slice(start, html.indexOf('</section>', start));
}

/** Cell texts of the headline table's body rows: [row header, ...cells]. */
function headlineRows(html: string): string[][] {
  const table = section(html, 'headline');
  const body = table.slice(table.indexOf('<tbody>'), table.indexOf('</tbody>'));
  return body
    .split('<tr>')
    .slice(1)
    .map((row) =>
      [...row.matchAll(/<t[hd][^>]*>(.*?)<\/t[hd]>/g)].map((m) =>
        m[1].replace(/<span class="(meta|cert)">.*?<\/span>/g, '').replace(/<[^>]+>/g, ''),
      ),
    );
}

const p1 = (x: number) => `${(x * 100).toFixed(1)}%`;

describe('renderReport', () => {
  const results = makeResults();
  const html = renderReport(results);

  it('references nothing on the network', () => {
    expect(html).not.toMatch(/(?:src|href)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<script[^>]*\bsrc\s*=/i);
    expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i);
    // The page forbids itself the network, images only from data: URIs.
    expect(html).toContain(`content="default-src 'none'; img-src data:;`);
    // vega's runtime is inlined, not fetched.
    expect(html).toContain('vega');
    expect(html.length).toBeGreaterThan(400_000);
  });

  it('escapes names from the config', () => {
    const evil = '<script>alert("pwned")</script>';
    const out = renderReport(makeResults({ modelName: evil }), { title: '<b>T&C</b>' });
    expect(out).not.toContain('<script>alert(');
    expect(out).not.toContain('alert("pwned")</script>');
    expect(out).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;');
    expect(out).toContain('<title>&lt;b&gt;T&amp;C&lt;/b&gt;</title>');
    // Only the page's own script elements: vega's runtime, the boot code, one spec per chart.
    const tags = [...out.matchAll(/<script\b[^>]*>/gi)].map((m) => m[0]);
    for (const tag of tags) {
      expect(tag).toMatch(/^<script>$|^<script type="application\/json" id="chart-\d+-spec">$/);
    }
    expect(tags.filter((t) => t === '<script>').length).toBe(2);
    // Inside a spec, the name survives as data, with `<` escaped.
    expect(out).toContain('\\u003cscript\\u003ealert(\\"pwned\\")\\u003c/script\\u003e');
  });

  it('has every section, in order, with its heading', () => {
    let at = 0;
    for (const h of HEADINGS) {
      const i = html.indexOf(`<h2>${h}</h2>`, at);
      expect(i, h).toBeGreaterThan(at);
      at = i;
    }
  });

  it('prints the headline numbers as percentages with one decimal, and the cost', () => {
    const rows = headlineRows(html);
    expect(rows.length).toBe(results.targets.length);
    results.targets.forEach((t, i) => {
      const worst = ['linf', 'l2'].flatMap((norm) =>
        t.worstCase
          .filter((w) => w.norm === norm)
          .sort((a, b) => a.eps - b.eps)
          .map((w) => p1(w.robustAccuracy)),
      );
      expect(rows[i][0]).toBe(t.id);
      expect(rows[i].slice(1, 2 + worst.length)).toEqual([p1(t.clean.accuracy), ...worst]);
      expect(rows[i].at(-2)).toBe(t.cost.gradientEvaluations.toLocaleString('en-US'));
      expect(rows[i].at(-1)).toBe(t.cost.queries.toLocaleString('en-US'));
    });
    // The first target, spelled out: 80 examples, 67 right.
    expect(results.targets[0].clean.accuracy).toBeCloseTo(67 / 80, 10);
    expect(rows[0][1]).toBe('83.8%');
    // The column headers name each eps.
    for (const e of [0.05, 0.1, 0.2, 0.5, 1, 2])
      expect(section(html, 'headline')).toContain(`ε=${e}</th>`);
    // Certified accuracy of the IBP model sits under its robust accuracy at the same eps.
    const ibp = results.targets[2].certified.find((c) => c.method === 'crown')!;
    expect(section(html, 'headline')).toContain(
      `cert. ${p1(ibp.curve.find((p) => p.radius === 0.1)!.accuracy)} CROWN`,
    );
  });

  it('warns in a banner exactly when an honesty check warns', () => {
    expect(html).toContain('id="honesty-warning"');
    expect(html).toContain('may overstate robustness');
    const header = html.slice(0, html.indexOf('<section'));
    expect(header).toContain('Black box does not beat white box');
    expect(header).toContain('cnn-small + jpeg:q=75');

    const clean = renderReport(makeResults({ warn: false }));
    expect(clean).not.toContain('id="honesty-warning"');
    expect(clean).not.toContain('may overstate robustness');
    expect(clean).toContain('id="honesty-pass"');
    expect(clean).toContain('All honesty checks passed');
  });

  it('lists every honesty check with its badge and detail', () => {
    const checks = section(html, 'honesty');
    const all = results.targets.flatMap((t) => t.honesty);
    expect(checks.match(/<span class="badge (pass|warn|skip)">/g)?.length).toBe(all.length);
    expect(checks.match(/<span class="badge warn">/g)?.length).toBe(1);
    for (const h of all) expect(checks).toContain(escapeHtml(h.detail));
  });

  it('says so when nothing was certified', () => {
    const out = renderReport(makeResults({ certified: false }));
    const cert = section(out, 'certified');
    expect(cert).toContain('No certified results');
    expect(cert).not.toContain('data-chart');
    expect(section(out, 'headline')).not.toContain('cert.');
    // Curves, trade-off, generalisation (2 norms each) and fairness (class, group) remain.
    expect(out.match(/data-chart /g)?.length).toBe(8);
    expect(html.match(/data-chart /g)?.length).toBe(10);
  });

  it('shows the certified curves as tables', () => {
    const cert = section(html, 'certified');
    expect(cert).toContain('Certified accuracy, L∞');
    expect(cert).toContain('Certified accuracy, L2');
    const smoothing = results.targets[2].certified.find((c) => c.method === 'smoothing')!;
    for (const p of smoothing.curve)
      expect(cert).toContain(`<td class="num">${p1(p.accuracy)}</td>`);
  });

  it('names the worst and best class in the fairness summary', () => {
    const fair = section(html, 'fairness');
    for (const t of results.targets) {
      const top = t.fairness.summary.reduce((a, b) => (b.gap > a.gap ? b : a));
      expect(fair).toContain(
        `Largest gap: ${(top.gap * 100).toFixed(1)} pts between ${top.over} <strong>${escapeHtml(top.worst)}</strong>`,
      );
      expect(fair).toContain(`<strong>${escapeHtml(top.best)}</strong>`);
    }
    const out = renderReport(makeResults({ groups: false }));
    expect(section(out, 'fairness')).toContain('No groups were defined');
  });

  it('shows the gallery with class names and confidences, and refuses non-PNG image sources', () => {
    const examples = section(html, 'examples');
    const items = results.targets.flatMap((t) => t.gallery);
    expect(examples.match(/<div class="example">/g)?.length).toBe(items.length);
    const g = items[0];
    expect(examples).toContain(
      `${escapeHtml(results.dataset.classNames[g.adversarialPrediction])} (${p1(g.adversarialConfidence)})`,
    );
    expect(examples).toContain('gradient · clean');

    const hostile: EvaluationResults = makeResults();
    hostile.targets[0].gallery[0].clean = 'https://example.com/x.png';
    hostile.targets[0].gallery[0].adversarial = 'javascript:alert(1)';
    const out = renderReport(hostile);
    expect(out).not.toContain('example.com');
    expect(out).not.toContain('javascript:alert');
    expect(out).toContain('no image');
  });

  it('renders empty results without failing', () => {
    const empty: EvaluationResults = { ...makeResults(), targets: [], notes: [] };
    const out = renderReport(empty);
    expect(out).toContain('No targets were evaluated.');
    expect(out).toContain('No certified results');
    expect(out).toContain('No example images were saved.');
    expect(out).toContain('No notes.');
    expect(out).toContain('No honesty checks ran.');
    expect(out).not.toContain('data-chart ');
  });

  it('compiles every chart without vega-lite warnings', () => {
    const charts = [
      ...robustnessCharts(results),
      ...certifiedCharts(results),
      ...tradeOffCharts(results),
      ...generalisationCharts(results),
      ...fairnessCharts(results),
    ];
    expect(charts.length).toBe(10);
    for (const c of charts) {
      expect(c.warnings, c.title).toEqual([]);
      expect(JSON.stringify(c.vega)).toContain('"marks"');
    }
  });
});

describe('report text helpers', () => {
  it('escape HTML and script-embedded JSON', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
    expect(jsonForScript({ s: '</script><!--' })).toBe('{"s":"\\u003c/script\\u003e\\u003c!--"}');
    expect(JSON.parse(jsonForScript({ s: '</script>&' }))).toEqual({ s: '</script>&' });
  });

  it('format eps as the field writes it', () => {
    expect(formatEps(0.1)).toBe('0.1');
    expect(formatEps(8 / 255)).toBe('8/255');
    expect(formatEps(2)).toBe('2');
    expect(formatEps(0.0625)).toBe('0.0625');
  });
});
