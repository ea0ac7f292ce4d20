/**
 * Malformed and hostile requests (bench/serve-malformed-cases.ts): each gets its 4xx with
 * `{ error: { code, message } }` naming the problem, over a real connection and through
 * fastify's inject; afterwards the service is healthy and correct, has leaked no tensors, and its
 * audit log holds one rejection line per request and nothing of what they carried.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MALFORMED_KEY,
  type MalformedCase,
  malformedCases,
  malformedGuard,
  pngOf,
} from '../../bench/serve-malformed-cases.js';
import { type RawResponse, send, sendRaw } from '../../bench/serve-malformed-send.js';
import type { TfjsClassifier } from '../../src/models/index.js';
import { parseGuardConfig } from '../../src/serve/guard-config.js';
import { createService } from '../../src/serve/server.js';
import {
  expectClose,
  guard,
  loadMlp,
  nested,
  referenceProbabilities,
  ToyModel,
  testImages,
  toyInput,
} from './helpers.js';

const CASES = malformedCases();
const auth = { authorization: `Bearer ${MALFORMED_KEY}` };
const images = testImages(2);
const validJson = JSON.stringify({ inputs: [nested(images.x, 0), nested(images.x, 1)] });
const predictJson = {
  method: 'POST' as const,
  url: '/v1/predict',
  payload: validJson,
  headers: { 'content-type': 'application/json', ...auth },
};
const predictPng = {
  method: 'POST' as const,
  url: '/v1/predict',
  payload: pngOf(28, 28),
  headers: { 'content-type': 'image/png', ...auth },
};

let mlp: TfjsClassifier;
let app: Awaited<ReturnType<typeof createService>>;
let base: string;
let dir: string;
const internalErrors: unknown[] = [];

beforeAll(async () => {
  mlp = await loadMlp();
  dir = mkdtempSync(path.join(tmpdir(), 'parry-serve-malformed-'));
  app = await createService({
    model: mlp,
    guard: parseGuardConfig(malformedGuard(path.join(dir, 'shared.log'))),
    onInternalError: (e) => internalErrors.push(e),
  });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
  mlp.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function expectRefusal(c: MalformedCase, res: RawResponse): void {
  expect(res.status, `${c.name}: ${res.body}`).toBe(c.status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const parsed = JSON.parse(res.body);
  expect(Object.keys(parsed)).toEqual(['error']);
  expect(Object.keys(parsed.error).sort()).toEqual(['code', 'message']);
  expect(parsed.error.code).toBe(c.code);
  expect(parsed.error.message).toMatch(c.message);
}

/** What a request looks like, to tell two cases apart. */
function fingerprint(c: MalformedCase): string {
  if ('wire' in c.request) return `wire ${c.request.wire}`;
  const { method, url, headers, payload } = c.request;
  const body = Buffer.isBuffer(payload) ? payload.toString('base64') : payload;
  return JSON.stringify([method, url, headers, body]);
}

describe('the malformed requests', () => {
  it('are at least 40 distinct ones, covering every kind, each expecting a 4xx', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40);
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(new Set(CASES.map(fingerprint)).size).toBe(CASES.length);
    expect(new Set(CASES.map((c) => c.kind))).toEqual(
      new Set(['json', 'shape', 'value', 'size', 'type', 'image', 'key', 'path', 'http']),
    );
    for (const c of CASES) expect(c.status >= 400 && c.status < 500, c.name).toBe(true);
  });
});

describe('each malformed request gets its 4xx naming the problem', () => {
  for (const c of CASES) {
    it(`${c.name} → ${c.status} ${c.code}`, async () => {
      expectRefusal(c, await send(base, c.request));
      if (!('wire' in c.request)) {
        const r = await app.inject(c.request);
        expectRefusal(c, { status: r.statusCode, headers: r.headers, body: r.body });
      }
      expect(internalErrors).toEqual([]);
    });
  }
});

/** Strings of the requests that must not reach the audit log (keys, paths, bodies). */
function carried(c: MalformedCase): string[] {
  if ('wire' in c.request) return [c.request.wire.split('\r\n')[0], 'X-Pad', 'aaaaaaaa'];
  const { url, headers, payload } = c.request;
  const out = Object.entries(headers)
    .filter(([name]) => name !== 'content-type')
    .map(([, v]) => v);
  if (!['/v1/predict', '/v1/model'].includes(url)) out.push(url);
  if (typeof payload === 'string' && payload.length >= 8) out.push(payload.slice(0, 24));
  return out;
}

describe('after all of them', () => {
  it('the audit log holds one rejection line each and nothing they carried; the service is healthy, correct and leaks no tensors', async () => {
    const file = path.join(dir, 'audit.log');
    const internal: unknown[] = [];
    const svc = await createService({
      model: mlp,
      guard: parseGuardConfig(malformedGuard(file)),
      onInternalError: (e) => internal.push(e),
    });
    const url = await svc.listen({ port: 0, host: '127.0.0.1' });
    const tensors = tf.memory().numTensors;
    for (const c of CASES) expect((await send(url, c.request)).status, c.name).toBe(c.status);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(internal).toEqual([]);

    const health = await sendRaw(url, { method: 'GET', url: '/healthz', headers: {} });
    expect([health.status, JSON.parse(health.body)]).toEqual([200, { status: 'ok' }]);
    expect((await sendRaw(url, { method: 'GET', url: '/readyz', headers: {} })).status).toBe(200);
    const ref = referenceProbabilities(mlp, images.x, 2);
    const answer = await sendRaw(url, predictJson);
    expect(answer.status, answer.body).toBe(200);
    JSON.parse(answer.body).predictions.forEach(
      (p: { label: number; probabilities: number[] }, i: number) => {
        expect(p.label).toBe(ref[i].indexOf(Math.max(...ref[i])));
        expectClose(p.probabilities, ref[i]);
      },
    );
    const metrics = (await sendRaw(url, { method: 'GET', url: '/metrics', headers: {} })).body;
    const rejections = [...metrics.matchAll(/^parry_rejections_total\{[^}]*\} (\d+)$/gm)];
    expect(rejections.reduce((a, m) => a + Number(m[1]), 0)).toBe(CASES.length);
    await svc.close();

    const text = readFileSync(file, 'utf8');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(CASES.length + 1);
    const refused = lines.filter((l) => l.status !== 200);
    const tally = (xs: string[]) => xs.sort().join('\n');
    expect(tally(refused.map((l) => `${l.status} ${l.error}`))).toBe(
      tally(CASES.map((c) => `${c.status} ${c.code}`)),
    );
    for (const l of refused) {
      expect(Object.keys(l).sort()).toEqual(
        [
          ...['error', 'guards', 'id', 'inputSha256', 'ip', 'key', 'latencyMs', 'method'],
          ...['predictions', 'route', 'rows', 'status', 'time'],
        ].sort(),
      );
      expect([l.rows, l.inputSha256, l.predictions]).toEqual([null, null, null]);
      expect([null, 'tester']).toContain(l.key);
      expect(['/v1/predict', '/v1/model', 'unmatched', 'unparsed']).toContain(l.route);
    }
    for (const c of CASES) {
      for (const s of carried(c)) expect(text, `${c.name} left '${s}'`).not.toContain(s);
    }
    expect(text).not.toContain(MALFORMED_KEY);
  });

  it('the shared service stays correct and leaks no tensors over 200 mixed requests', async () => {
    const ref = referenceProbabilities(mlp, images.x, 2);
    const check = async () => {
      const res = await app.inject(predictJson);
      expect(res.statusCode, res.body).toBe(200);
      res.json().predictions.forEach((p: { label: number; probabilities: number[] }, i: number) => {
        expect(p.label).toBe(ref[i].indexOf(Math.max(...ref[i])));
        expectClose(p.probabilities, ref[i]);
      });
    };
    await check();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 200; i++) {
      if (i % 4 === 3) {
        const c = CASES[i % CASES.length];
        expect((await send(base, c.request)).status, c.name).toBe(c.status);
      } else {
        const res = await app.inject(i % 2 === 0 ? predictJson : predictPng);
        expect(res.statusCode).toBe(200);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(internalErrors).toEqual([]);
    await check();
  });
});

describe('requests that are not malformed but still refused or cut short', () => {
  it('over quota → 429 quota_exceeded with Retry-After', async () => {
    const small = await createService({
      model: new ToyModel(),
      guard: guard({ guards: { quota: { rate: 100, burst: 64, perDay: 2 } } }),
    });
    const one = {
      method: 'POST' as const,
      url: '/v1/predict',
      payload: JSON.stringify({ inputs: [toyInput(0)] }),
      headers: { 'content-type': 'application/json' },
    };
    expect((await small.inject(one)).statusCode).toBe(200);
    expect((await small.inject(one)).statusCode).toBe(200);
    const over = await small.inject(one);
    expect(over.statusCode).toBe(429);
    expect(over.json().error.code).toBe('quota_exceeded');
    expect(over.json().error.message).toMatch(/daily quota \(guards\.quota\.perDay\)/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    await small.close();
  });

  it('a client that leaves while its request waits in the batcher does not hold up shutdown', async () => {
    const file = path.join(dir, 'gone.log');
    const svc = await createService({
      model: new ToyModel(),
      guard: parseGuardConfig({
        ...malformedGuard(file),
        batching: { maxBatch: 32, maxWaitMs: 60_000, wait: 'always' },
      }),
    });
    const url = new URL(await svc.listen({ port: 0, host: '127.0.0.1' }));
    const body = JSON.stringify({ inputs: [toyInput(0)] });
    const socket = net.connect(Number(url.port), '127.0.0.1');
    socket.write(
      `POST /v1/predict HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${MALFORMED_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    await new Promise((r) => setTimeout(r, 300));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const closed = await Promise.race([
      svc.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still waiting after 10 s'), 10_000)),
    ]);
    expect(closed).toBe('closed');
    const [line] = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect([line.route, line.key, line.status, line.error]).toEqual([
      '/v1/predict',
      'tester',
      null,
      'aborted',
    ]);
  });
});
