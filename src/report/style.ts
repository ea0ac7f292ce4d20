/** The report's stylesheet, inlined in the page: system fonts, one column, quiet tables. */
export const REPORT_CSS = `
:root {
  --text: #1d2329; --muted: #5f6b76; --line: #dfe3e8; --soft: #f5f7f9; --accent: #2f6fb3;
  --warn: #a4421a; --warn-bg: #fff4ec; --pass: #1f7a3d; --pass-bg: #eef8f1; --skip: #6b7280;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--text); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
main { max-width: 1240px; margin: 0 auto; padding: 28px 24px 64px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 6px; }
h2 { font-size: 21px; margin: 44px 0 10px; padding-top: 10px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
h4 { font-size: 14px; margin: 16px 0 8px; color: var(--muted); font-weight: 600; }
p { margin: 6px 0 10px; max-width: 78ch; }
a { color: var(--accent); }
.muted, .caption { color: var(--muted); }
.caption { font-size: 13px; margin-top: 4px; }
.empty { color: var(--muted); font-style: italic; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }

nav.toc { margin: 14px 0 4px; font-size: 13.5px; }
nav.toc a { margin-right: 14px; text-decoration: none; white-space: nowrap; }
nav.toc a:hover { text-decoration: underline; }

dl.facts { display: flex; flex-wrap: wrap; gap: 4px 22px; margin: 10px 0 16px; font-size: 13.5px; }
dl.facts div { display: flex; gap: 6px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }

.banner { border-radius: 6px; padding: 12px 16px; margin: 14px 0 8px; border: 1px solid; }
.banner p { margin: 0; max-width: none; }
.banner ul { margin: 8px 0 0; padding-left: 20px; }
.banner.warn { background: var(--warn-bg); border-color: #f0b48f; color: #5c2408; }
.banner.warn strong:first-child::before { content: "⚠ "; }
.banner.pass { background: var(--pass-bg); border-color: #a9d8b8; color: #124d26; }
.banner.pass strong:first-child::before { content: "✓ "; }
.banner.neutral { background: var(--soft); border-color: var(--line); }

.scroll { overflow-x: auto; }
table.data { border-collapse: collapse; font-size: 13.5px; margin: 8px 0 12px; }
table.data th, table.data td { padding: 5px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
table.data thead th { background: var(--soft); font-weight: 600; border-bottom: 1px solid #c9d0d7; white-space: nowrap; }
table.data thead th.group { text-align: center; border-left: 2px solid #fff; }
table.data tbody th { font-weight: 600; white-space: nowrap; }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.data td.best { font-weight: 700; }
table.data .meta { display: block; font-weight: 400; font-size: 12px; color: var(--muted); }
table.data .cert { display: block; font-weight: 400; font-size: 11.5px; color: var(--muted); }
table.headline tbody tr:hover, table.checks tbody tr:hover { background: #fafbfc; }
table.checks td:last-child { max-width: 60ch; }

.badge {
  display: inline-block; min-width: 44px; padding: 1px 8px; border-radius: 10px; text-align: center;
  font-size: 12px; font-weight: 600; letter-spacing: .02em; text-transform: uppercase; color: #fff;
}
.badge.pass { background: var(--pass); }
.badge.warn { background: var(--warn); }
.badge.skip { background: var(--skip); }

.chart { margin: 18px 0 8px; text-align: left; }
.chart-row { display: flex; flex-wrap: wrap; gap: 8px 40px; align-items: flex-start; }
.chart-row .chart { flex: 0 1 auto; max-width: 100%; }
.chart-row .chart .caption { max-width: 48ch; }
.chart .vega { overflow-x: auto; min-height: 40px; }
.chart .caption { max-width: 78ch; }
.chart .vega svg { max-width: none; }
.chart-error { color: var(--warn); }

.gallery { display: flex; flex-wrap: wrap; gap: 14px; }
.example { border: 1px solid var(--line); border-radius: 6px; padding: 10px; background: #fff; }
.panels { display: flex; gap: 8px; align-items: flex-start; }
.saliency { padding-left: 8px; border-left: 1px dashed var(--line); }
figure { margin: 0; text-align: center; }
figure img, figure .missing {
  display: block; width: 96px; height: 96px; object-fit: contain; image-rendering: pixelated;
  background: var(--soft); border: 1px solid var(--line);
}
figure .missing { display: flex; align-items: center; justify-content: center; color: var(--muted); font-size: 12px; }
figcaption { font-size: 11.5px; color: var(--muted); margin-top: 3px; }
dl.labels { display: grid; grid-template-columns: auto 1fr; gap: 1px 10px; margin: 8px 0 0; font-size: 12.5px; }
dl.labels div { display: contents; }
dl.labels dt { color: var(--muted); }
dl.labels dd { margin: 0; }
dl.labels .wrong { color: var(--warn); font-weight: 600; }
dl.labels .right { color: var(--pass); }
dl.labels .badge { min-width: 0; font-size: 10.5px; margin-left: 4px; }

.fairness-targets { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 0 32px; }
.fairness-targets > div { min-width: 0; overflow-x: auto; }
.fairness-targets td { white-space: nowrap; }
.fairness-targets table.data th, .fairness-targets table.data td { padding: 4px 7px; }
ul.notes li { margin: 3px 0; }
details { margin: 8px 0; }
summary { cursor: pointer; color: var(--accent); }
pre.config { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 12px; overflow-x: auto; }
.triggers { display: flex; flex-wrap: wrap; gap: 8px; }
.trigger figure { margin: 0; font-size: 12px; }
.trigger.flagged img { outline: 3px solid var(--warn); }
.inversions { display: flex; flex-wrap: wrap; gap: 12px; }
.inversion { display: flex; gap: 4px; max-width: 260px; }
.inversion figure { margin: 0; font-size: 12px; }
footer { margin-top: 48px; font-size: 12.5px; color: var(--muted); }
@media print { .chart .vega { overflow: visible; } nav.toc { display: none; } }
`;
