/**
 * The report of a real audit (parry serve in this process, the bundled MLP, a small budget) in
 * headless Chromium from a file:// URL: no script errors, no network, every chart drawn as an SVG
 * with marks, and the black-box banner visible at the top of the page.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { firstExamples, loadDataset } from '../../src/data/index.js';
import type { TfjsClassifier } from '../../src/models/index.js';
import { renderReport } from '../../src/report/index.js';
import { auditResults } from '../../src/serve/audit-report.js';
import { runAudit } from '../../src/serve/endpoint-audit.js';
import { HttpQueryClassifier } from '../../src/serve/http-classifier.js';
import { createService } from '../../src/serve/server.js';
import { guard, loadMlp } from '../serve/helpers.js';

const CHROMIUM = '/usr/bin/chromium';
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

// Runs in the page: each chart's SVG and marks, and where the black-box banner sits.
const COLLECT = `({
  charts: [...document.querySelectorAll('[data-chart]')].map((el) => ({
    id: el.id,
    svgs: el.querySelectorAll('svg').length,
    marks: el.querySelectorAll('svg .mark-symbol path, svg .mark-rect path, svg .mark-line path, svg .mark-rule line').length,
    error: el.querySelector('.chart-error') ? el.querySelector('.chart-error').textContent : null,
  })),
  banner: (() => {
    const b = document.getElementById('black-box');
    if (!b) return null;
    const r = b.getBoundingClientRect();
    return { top: r.top, height: r.height, inHeader: !!b.closest('header'), text: b.innerText };
  })(),
})`;

interface Facts {
  charts: { id: string; svgs: number; marks: number; error: string | null }[];
  banner: { top: number; height: number; inHeader: boolean; text: string } | null;
}

let mlp: TfjsClassifier | undefined;
let app: FastifyInstance | undefined;
let browser: Browser | undefined;
const dir = mkdtempSync(join(tmpdir(), 'parry-audit-browser-'));
afterAll(async () => {
  await browser?.close();
  await app?.close();
  mlp?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('audit report in a browser', () => {
  it('draws every chart without errors, offline, under the black-box banner', {
    timeout: 180_000,
  }, async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing`).toBe(true);
    mlp = await loadMlp();
    app = await createService({ model: mlp, guard: guard() });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const target = await HttpQueryClassifier.connect(url);
    const n = 8;
    const test = firstExamples(loadDataset('fashion-mnist-subset', 'test', { seed: 0 }), n);
    const train = loadDataset('fashion-mnist-subset', 'train', { seed: 0 });
    const r = await runAudit(
      target,
      { test, train },
      {
        n,
        budget: 1208,
        stages: ['square', 'hsj', 'membership', 'copycat'],
        thiefArch: 'mlp',
        thiefEpochs: 1,
      },
    );
    const results = auditResults(r, test, {
      url,
      outputs: target.outputs,
      guards: target.info.guards,
      requests: target.requests,
      waitedSeconds: 0,
      abstentions: 0,
    });
    const file = join(dir, 'report.html');
    writeFileSync(file, renderReport(results));

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('request', (q) => {
      if (!q.url().startsWith('file:') && !q.url().startsWith('data:')) requests.push(q.url());
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    await page.waitForSelector('body[data-charts="ready"]', { timeout: 60_000 });
    const facts = (await page.evaluate(COLLECT)) as Facts;
    await context.close();

    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    // Curves, trade-off, generalisation, fairness per class, stealing.
    expect(facts.charts.length).toBe(5);
    for (const c of facts.charts) {
      expect(c.error, `${c.id} failed`).toBeNull();
      expect(c.svgs, `${c.id} has no svg`).toBeGreaterThan(0);
      expect(c.marks, `${c.id} has no marks`).toBeGreaterThan(0);
    }
    // The banner is in the header and on the first screen.
    expect(facts.banner).not.toBeNull();
    expect(facts.banner!.inHeader).toBe(true);
    expect(facts.banner!.top + facts.banner!.height).toBeLessThan(900);
    expect(facts.banner!.text).toMatch(
      /^Black-box audit of http:\/\/127\.0\.0\.1:\d+: only the endpoint's answers/,
    );
  });
});
