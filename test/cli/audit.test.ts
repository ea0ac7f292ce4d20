/**
 * `parry audit` end to end: the compiled CLI against a parry service this test process serves on
 * a loopback port (the bundled MLP behind an API key), a tiny budget. results.json is in
 * `parry evaluate`'s format, marked black-box, agrees with stdout and keeps within the budget;
 * report.html is the evaluate report under a black-box banner, self-contained; the key and the
 * URL's credentials appear nowhere; bad input is one line, exit 2.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import type { TfjsClassifier } from '../../src/models/index.js';
import { hashApiKey } from '../../src/serve/guard-config.js';
import { createService } from '../../src/serve/server.js';
import { guard, loadMlp } from '../serve/helpers.js';
import { freePort } from '../serve/redis-server.js';

const root = packageRoot();
const dir = mkdtempSync(path.join(tmpdir(), 'parry-audit-cli-'));
let mlp: TfjsClassifier;
let app: FastifyInstance;
let url: string;
const KEY = 'audit-secret-key';

beforeAll(async () => {
  mlp = await loadMlp();
  app = await createService({
    model: mlp,
    guard: guard({ guards: { apiKeys: [{ id: 'auditor', sha256: hashApiKey(KEY) }] } }),
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  mlp.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** `parry audit ...args`, asynchronously: the service runs in this process's event loop. */
function audit(
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, 'bin', 'parry.mjs'), 'audit', ...args], {
      cwd: root,
      env: { ...process.env, PARRY_BACKEND: 'wasm' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function expectOneLine(
  r: { code: number | null; stdout: string; stderr: string },
  pattern: RegExp,
) {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(pattern);
}

describe('parry audit', () => {
  it('audits the service within the budget; writes results.json and a black-box report.html', async () => {
    const out = path.join(dir, 'run');
    // Credentials in the URL are dropped by fetch's URL parsing for the requests, and by the
    // audit for everything it writes.
    const withUser = url.replace('http://', 'http://someone:hunter2@');
    const r = await audit(
      '--url',
      withUser,
      '--header',
      `Authorization: Bearer ${KEY}`,
      '--n',
      '6',
      '--budget',
      '606',
      '--stages',
      'square,hsj,membership,copycat',
      '--thief-arch',
      'mlp',
      '--thief-epochs',
      '1',
      '--seed',
      '4',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    const saved = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(saved).toMatchObject({
      version: 1,
      access: {
        mode: 'black-box',
        url,
        outputs: 'scores',
        budget: 606,
        guards: { auth: 'api-key' },
        adapter: null,
      },
      dataset: { n: 6 },
      targets: [{ id: url, defense: 'api-key', engine: 'endpoint' }],
    });
    expect(printed).toMatchObject({
      command: 'audit',
      url,
      queries: saved.access.queries,
      clean: saved.targets[0].clean.accuracy,
      results: path.join(out, 'results.json'),
      report: path.join(out, 'report.html'),
    });
    expect(saved.access.stages.map((s: { stage: string }) => s.stage)).toEqual([
      'square',
      'hsj',
      'membership',
      'copycat',
    ]);
    expect(printed.stages.map((s: { stage: string }) => s.stage)).toEqual([
      'square',
      'hsj',
      'membership',
      'copycat',
    ]);
    // What was printed per attack is what results.json holds.
    for (const c of saved.targets[0].attacks) {
      const p = printed.stages.find((s: { stage: string }) => s.stage === c.attack);
      expect(p.metrics.robustAccuracy).toBe(c.robustAccuracy);
    }
    expect(saved.access.queries).toBeLessThanOrEqual(606);
    for (const s of saved.access.stages) expect(s.queries).toBeLessThanOrEqual(s.share);
    // The service counted what the audit says it sent.
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const counted = Number(/parry_queries_total\{key="auditor"\} (\d+)/.exec(metrics)?.[1]);
    expect(counted).toBe(saved.access.queries);
    expect(r.stderr).toMatch(/audit: square done/);
    const page = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(page).toContain('<div class="banner neutral" id="black-box"');
    expect(page).toMatch(/Content-Security-Policy" content="default-src 'none'/);
    expect(page).not.toMatch(/<link|src="http/);
    for (const text of [page, JSON.stringify(saved), r.stdout, r.stderr]) {
      expect(text).not.toContain(KEY);
      expect(text).not.toContain('hunter2');
    }
  });

  it('talks to another API through an adapter file', async () => {
    const adapterFile = path.join(dir, 'adapter.json');
    writeFileSync(
      adapterFile,
      JSON.stringify({
        inputShape: [28, 28, 1],
        numClasses: 10,
        maxBatch: 16,
        request: { path: '/v1/predict', body: { inputs: '$inputs' }, layout: 'flat' },
        response: { probabilities: 'predictions[*].probabilities' },
      }),
    );
    const out = path.join(dir, 'adapter');
    const r = await audit(
      '--url',
      url,
      '--header',
      `X-API-Key: ${KEY}`,
      '--adapter',
      adapterFile,
      '--n',
      '4',
      '--budget',
      '84',
      '--stages',
      'square',
      '--out',
      out,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/clean accuracy .* on 4 examples/);
    expect(r.stdout).toMatch(/square: done, robust accuracy \d+\.\d+%/);
    const saved = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(saved.access).toMatchObject({ adapter: adapterFile, guards: null, outputs: 'scores' });
    expect(saved.access.stages[0].status).toBe('done');
    expect(saved.targets[0].defense).toBe('unknown (not a parry service)');
  });

  it('sends the credentials of the URL as Basic authorization, and writes the URL without them', async () => {
    // A stub endpoint that answers label 0 and records the authorization header it gets.
    const seen: (string | undefined)[] = [];
    const stub = createServer((req, res) => {
      seen.push(req.headers.authorization);
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.method === 'GET') {
          res.end(JSON.stringify({ inputShape: [28, 28, 1], numClasses: 10, bounds: [0, 1] }));
          return;
        }
        const rows = (JSON.parse(body) as { inputs: unknown[] }).inputs.length;
        res.end(
          JSON.stringify({ predictions: Array.from({ length: rows }, () => ({ label: 0 })) }),
        );
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    const port = (stub.address() as AddressInfo).port;
    const out = path.join(dir, 'basic');
    try {
      const r = await audit(
        '--url',
        `http://auditor:p%40ss@127.0.0.1:${port}?token=abc`,
        '--n',
        '2',
        '--budget',
        '2',
        '--stages',
        'membership',
        '--out',
        out,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(seen.length).toBeGreaterThan(1);
      for (const h of seen)
        expect(h).toBe(`Basic ${Buffer.from('auditor:p@ss').toString('base64')}`);
      const saved = readFileSync(path.join(out, 'results.json'), 'utf8');
      expect(JSON.parse(saved).access).toMatchObject({
        url: `http://127.0.0.1:${port}/?token=redacted`,
        outputs: 'labels',
      });
      for (const text of [saved, r.stdout, r.stderr]) expect(text).not.toMatch(/p%40ss|p@ss|abc/);
    } finally {
      await new Promise((resolve) => stub.close(resolve));
    }
  });

  it('bad input: one line, exit 2, nothing written', async () => {
    const out = path.join(dir, 'never');
    const base = ['--out', out, '--n', '8'];
    expectOneLine(
      await audit('--url', url, '--budget', '7', ...base),
      /budget \(7\) must cover the clean pass over n = 8/,
    );
    expectOneLine(
      await audit('--url', url, '--budget', '100', '--header', 'no colon', ...base),
      /--header.*must be 'Name: value'/,
    );
    expectOneLine(
      await audit('--url', url, '--budget', '100', '--stages', 'square,fgsm', ...base),
      /unknown stage 'fgsm'/,
    );
    expectOneLine(
      await audit(
        '--url',
        url,
        '--budget',
        '100',
        '--header',
        'Authorization: Bearer wrong',
        ...base,
      ),
      /401 invalid_key/,
    );
    const port = await freePort();
    expectOneLine(
      await audit('--url', `http://127.0.0.1:${port}`, '--budget', '100', ...base),
      /no answer/,
    );
    const bad = path.join(dir, 'bad-adapter.json');
    writeFileSync(
      bad,
      JSON.stringify({ inputShape: [28, 28, 1], request: { body: {} }, response: {} }),
    );
    expectOneLine(
      await audit('--url', url, '--budget', '100', '--adapter', bad, ...base),
      /--adapter .*numClasses/,
    );
    expect(existsSync(out)).toBe(false);
  });
});
