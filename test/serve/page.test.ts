/**
 * The browser page at `/`: bundled here with the build's own function, served self-contained
 * (inline script admitted by its hash, no external reference), refused when not built or turned
 * off; and in headless Chromium (playwright-core, Debian's /usr/bin/chromium): load an image,
 * see the prediction and the guards' verdicts, run the black-box FGSM against the service and
 * watch the prediction flip — with no console error and no request outside the page's origin.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { chromium } from 'playwright-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TfjsClassifier } from '../../src/models/index.js';
import { hashApiKey } from '../../src/serve/guard-config.js';
import { bundlePage } from '../../src/serve/page-bundle.js';
import { createService, type ServiceOptions } from '../../src/serve/server.js';
import { guard, loadMlp, testImages } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(path.join(tmpdir(), 'parry-page-'));
const bundle = path.join(dir, 'app.js');
let mlp: TfjsClassifier;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  mlp = await loadMlp();
  await bundlePage(bundle);
});
afterAll(async () => {
  for (const a of apps) await a.close();
  mlp.dispose();
  rmSync(dir, { recursive: true, force: true });
});

async function service(extra: Partial<ServiceOptions> = {}) {
  const app = await createService({ model: mlp, guard: guard(), pageBundle: bundle, ...extra });
  apps.push(app);
  return app;
}

describe('GET /', () => {
  it('is one self-contained document: inline script admitted by its hash, nothing external', async () => {
    const app = await service();
    const res = await app.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const html = res.body;
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    expect(scripts).toHaveLength(1);
    const hash = createHash('sha256').update(scripts[0], 'utf8').digest('base64');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain(`script-src 'sha256-${hash}'`);
    expect(csp).toMatch(/default-src 'none'.*connect-src 'self'/);
    // No external resource of any kind: no src/href attributes, no absolute URLs at all.
    expect(html).not.toMatch(/\s(src|href)=|<link|@import|https?:\/\//i);
    // The page is not an API request: it stays out of the OpenAPI document.
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).not.toContain('/');
  });

  it('says so when the page is not built, and is absent when turned off', async () => {
    const missing = await service({ pageBundle: path.join(dir, 'missing.js') });
    const res = await missing.inject({ method: 'GET', url: '/' });
    expect([res.statusCode, res.json().error.code]).toEqual([404, 'page_not_built']);
    const off = await service({ page: false });
    expect((await off.inject({ method: 'GET', url: '/' })).json().error.code).toBe('not_found');
  });
});

describe.skipIf(!existsSync(CHROMIUM))('the page in headless Chromium', () => {
  it('loads an image, predicts with verdicts, runs FGSM and the prediction flips', async () => {
    const app = await service({
      guard: guard({ guards: { apiKeys: [{ id: 'page', sha256: hashApiKey('page-key') }] } }),
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    // A test image the model gets right, as a grey PNG.
    const images = testImages(4);
    const png = new PNG({ width: 28, height: 28 });
    for (let p = 0; p < 784; p++) {
      const b = Math.round(images.x[p] * 255);
      png.data.set([b, b, b, 255], 4 * p);
    }
    const file = path.join(dir, 'example.png');
    writeFileSync(file, PNG.sync.write(png));

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      const foreign: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => {
        if (
          !r.url().startsWith(url) &&
          !r.url().startsWith('blob:') &&
          !r.url().startsWith('data:')
        ) {
          foreign.push(r.url());
        }
      });
      await page.goto(url);
      // Without a key the service refuses /v1/model: the page says so and waits for one.
      await page.waitForSelector('#log li');
      expect(await page.textContent('#log')).toMatch(/401 missing_key/);
      errors.length = 0; // the browser logs the refused request itself
      await page.fill('#key', 'page-key');
      await page.click('#connect');
      await page.waitForSelector('#ready[data-ready="true"]', { state: 'attached' });
      expect(await page.textContent('#model')).toMatch(/input \[28,28,1\], 10 classes/);

      await page.setInputFiles('#file', file);
      await page.waitForFunction(() =>
        document.querySelector('#log')?.textContent?.includes('loaded'),
      );
      await page.click('#predict');
      await page.waitForFunction(
        () => (document.querySelector('#result')?.textContent ?? '') !== '',
      );
      const cls = mlp.classNames![images.labels[0]];
      expect(await page.textContent('#result')).toContain(cls);
      expect(await page.textContent('#result-guards')).toMatch(
        /auth: pass.*input: pass.*quota: pass/,
      );

      await page.fill('#eps', '0.15');
      await page.fill('#steps', '10');
      await page.fill('#samples', '20');
      await page.click('#attack');
      await page.waitForFunction(
        () =>
          /flipped|step 10\/10/.test(document.querySelector('#attack-status')?.textContent ?? '') ||
          (document.querySelector('#log')?.textContent ?? '').includes('attack:'),
        undefined,
        { timeout: 60_000 },
      );
      expect(await page.textContent('#attack-status')).toMatch(/the prediction flipped/);
      expect(await page.textContent('#adv-result')).not.toContain(cls);
      expect(errors).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
