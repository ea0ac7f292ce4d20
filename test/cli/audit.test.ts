/**
 * `parry audit` end to end: the compiled CLI against a parry service this test process serves on
 * a loopback port (the bundled MLP behind an API key), a tiny budget. results.json matches
 * stdout and keeps within the budget, report.html is marked black-box and self-contained, the
 * key appears nowhere; bad input is one line, exit 2.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    const r = await audit(
      '--url',
      url,
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
    const { engine: _engine, ...record } = printed;
    expect(saved).toEqual(record);
    expect(saved).toMatchObject({
      command: 'audit',
      kind: 'endpoint-audit',
      blackBox: true,
      url,
      endpoint: { outputs: 'scores', guards: { auth: 'api-key' } },
      dataset: { n: 6 },
    });
    expect(saved.stages.map((s: { stage: string }) => s.stage)).toEqual([
      'square',
      'hsj',
      'membership',
      'copycat',
    ]);
    expect(saved.queries).toBeLessThanOrEqual(606);
    for (const s of saved.stages) expect(s.queries).toBeLessThanOrEqual(s.share);
    // The service counted what the audit says it sent.
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const counted = Number(/parry_queries_total\{key="auditor"\} (\d+)/.exec(metrics)?.[1]);
    expect(counted).toBe(saved.queries);
    expect(r.stderr).toMatch(/audit: square done/);
    const page = readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(page).toContain('Black-box audit');
    expect(page).toMatch(/Content-Security-Policy" content="default-src 'none'/);
    expect(page).not.toMatch(/<script|<link|src="http/);
    for (const text of [page, JSON.stringify(saved)]) expect(text).not.toContain(KEY);
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
    const saved = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(saved.endpoint).toMatchObject({ adapter: adapterFile, guards: null, outputs: 'scores' });
    expect(saved.stages[0].status).toBe('done');
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
