/**
 * Opens the report in headless Chromium (Debian's, driven by playwright-core) from a file:// URL
 * and checks what a reader would see: no script errors, every chart drawn as an SVG with marks and
 * axis labels, every image decoded. Saves a full-page screenshot to test-output/report.png.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { parseEvaluateConfig } from '../../src/evaluate/config.js';
import { runEvaluation } from '../../src/evaluate/run.js';
import { renderReport } from '../../src/report/index.js';
import { makeResults } from './fixture.js';

const CHROMIUM = '/usr/bin/chromium';
// The launch flags of DESIGN.md: no sandbox (containers), no GPU, no background traffic.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const SCREENSHOT = join(import.meta.dirname, '..', '..', 'test-output', 'report.png');

interface PageFacts {
  charts: { id: string; svgs: number; marks: number; texts: string[]; error: string | null }[];
  images: { alt: string; naturalWidth: number; complete: boolean }[];
  scrollWidth: number;
}

// Runs in the page (a string, so this file needs no DOM types): what each chart and image shows.
const COLLECT = `({
  charts: [...document.querySelectorAll('[data-chart]')].map((el) => ({
    id: el.id,
    svgs: el.querySelectorAll('svg').length,
    marks: el.querySelectorAll(
      'svg .mark-symbol path, svg .mark-rect path, svg .mark-line path, svg .mark-rule line, svg .mark-text text',
    ).length,
    texts: [...el.querySelectorAll('svg .role-axis-label text')].map((t) => t.textContent || ''),
    error: el.querySelector('.chart-error') ? el.querySelector('.chart-error').textContent : null,
  })),
  scrollWidth: document.documentElement.scrollWidth,
  images: [...document.querySelectorAll('img')].map((img) => ({
    alt: img.alt,
    naturalWidth: img.naturalWidth,
    complete: img.complete,
  })),
})`;

interface Opened {
  facts: PageFacts;
  errors: string[];
  requests: string[];
}

/** Opens `html` from a file:// URL, waits for the charts, collects what the page shows. */
async function open(
  browser: Browser,
  dir: string,
  html: string,
  screenshot?: string,
): Promise<Opened> {
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning')
      errors.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) requests.push(r.url());
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  await page.waitForSelector('body[data-charts="ready"]', { timeout: 60_000 });
  const facts = (await page.evaluate(COLLECT)) as PageFacts;
  if (screenshot) {
    mkdirSync(join(screenshot, '..'), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  await context.close();
  return { facts, errors, requests };
}

/** No errors or network, every chart an SVG with marks and axis labels, every image decoded. */
function expectRendered({ facts, errors, requests }: Opened, charts: number) {
  expect(errors).toEqual([]);
  expect(requests).toEqual([]);
  expect(facts.charts.length).toBe(charts);
  for (const c of facts.charts) {
    expect(c.error, `${c.id} failed`).toBeNull();
    expect(c.svgs, `${c.id} has no svg`).toBeGreaterThan(0);
    expect(c.marks, `${c.id} has no marks`).toBeGreaterThan(0);
    expect(
      c.texts.filter((t) => t.trim() !== '').length,
      `${c.id} has no axis labels`,
    ).toBeGreaterThan(0);
  }
  // The accuracy axes read as percentages.
  expect(facts.charts.some((c) => c.texts.includes('100%'))).toBe(true);
  expect(facts.images.length).toBeGreaterThan(0);
  // Nothing pushes the page wider than the window (wide tables and charts scroll in place).
  expect(facts.scrollWidth).toBeLessThanOrEqual(1280);
  for (const img of facts.images) {
    expect(img.complete && img.naturalWidth > 0, `image '${img.alt}' did not decode`).toBe(true);
  }
}

describe('report in a browser', () => {
  let browser: Browser | undefined;
  let dir: string | undefined;

  afterAll(async () => {
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('draws every chart and image without errors, offline', { timeout: 180_000 }, async () => {
    // CI installs chromium (.ci/run): a missing browser fails this test, it is never skipped.
    expect(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)`,
    ).toBe(true);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    dir = mkdtempSync(join(tmpdir(), 'parry-report-'));
    const opened = await open(browser, dir, renderReport(makeResults()), SCREENSHOT);
    // Curves (2 norms), certified (2), trade-off (2), generalisation (2), fairness (class, group).
    expectRendered(opened, 10);
  });

  it('draws the report of a real evaluation of the bundled MLP', { timeout: 300_000 }, async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing`).toBe(true);
    browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    dir ??= mkdtempSync(join(tmpdir(), 'parry-report-'));
    const root = packageRoot();
    const config = parseEvaluateConfig(
      {
        n: 12,
        batchSize: 12,
        models: [{ path: 'models/fmnist-mlp-ibp', certify: { ibp: true } }],
        attacks: [{ attack: 'fgsm' }, { attack: 'pgd', params: { steps: 3 } }],
        eps: { linf: [0.05, 0.1], l2: [1] },
        groups: { byLabel: { Bag: 'bags', Trouser: 'bottoms' } },
        gallery: { examples: 1 },
        explain: { methods: ['gradient', 'integrated-gradients'] },
        honesty: { examples: 6, unboundedSteps: 5, moreSteps: { factor: 2, restarts: 1 } },
      },
      root,
    );
    const results = await runEvaluation(config, { outDir: mkdtempSync(join(dir, 'run-')) });
    const opened = await open(browser, dir, renderReport(results));
    expect(opened.facts.charts.length).toBeGreaterThan(0);
    expectRendered(opened, opened.facts.charts.length);
  });
});
