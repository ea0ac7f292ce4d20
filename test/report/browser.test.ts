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
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport(makeResults()));
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

    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await context.close();

    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    // Curves (2 norms), certified (2), trade-off (2), generalisation (2), fairness (class, group).
    expect(facts.charts.length).toBe(10);
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
  });
});
