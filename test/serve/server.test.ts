import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TfjsClassifier } from '../../src/models/index.js';
import { hashApiKey } from '../../src/serve/guard-config.js';
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

let mlp: TfjsClassifier;
const images = testImages(8);

beforeAll(async () => {
  mlp = await loadMlp();
});
afterAll(() => mlp.dispose());

const post = (payload: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST' as const,
  url: '/v1/predict',
  payload: payload as Record<string, unknown>,
  headers,
});

describe('POST /v1/predict on the bundled MLP', () => {
  it('answers JSON examples with the model’s own softmax and class names', async () => {
    const app = await createService({ model: mlp, guard: guard() });
    const res = await app.inject(post({ inputs: [0, 1, 2, 3].map((i) => nested(images.x, i)) }));
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    const ref = referenceProbabilities(mlp, images.x.subarray(0, 4 * images.size), 4);
    body.predictions.forEach(
      (p: { label: number; className: string; probabilities: number[] }, i: number) => {
        const best = ref[i].indexOf(Math.max(...ref[i]));
        expect(p.label).toBe(best);
        expect(p.className).toBe(mlp.classNames![best]);
        expectClose(p.probabilities, ref[i]);
      },
    );
    // The bundled MLP is right on most of these (86% test accuracy).
    const right = body.predictions.filter(
      (p: { label: number }, i: number) => p.label === images.labels[i],
    );
    expect(right.length).toBeGreaterThanOrEqual(3);
    expect(body.guards).toEqual({ auth: 'pass', input: 'pass', quota: 'pass' });
    await app.close();
  });

  it('answers a PNG as it answers the same pixels in JSON', async () => {
    const app = await createService({ model: mlp, guard: guard() });
    const bytes = Array.from(images.x.subarray(0, images.size), (v) => Math.round(v * 255));
    const png = new PNG({ width: 28, height: 28 });
    for (const [p, b] of bytes.entries()) png.data.set([b, b, b, 255], 4 * p);
    const image = await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: PNG.sync.write(png),
      headers: { 'content-type': 'image/png' },
    });
    expect(image.statusCode, image.body).toBe(200);
    const json = await app.inject(post({ inputs: [bytes.map((b) => b / 255)] }));
    expect(image.json().predictions).toEqual(json.json().predictions);
    await app.close();
  });
});

describe('GET routes', () => {
  it('/v1/model describes the model and the guards, without secrets', async () => {
    const digest = hashApiKey('k-123');
    const app = await createService({
      model: mlp,
      modelName: 'fmnist-mlp',
      guard: guard({
        seed: 4242,
        guards: {
          apiKeys: [{ id: 'ops', sha256: digest }],
          output: 'noise:sigma=0.01,seed=777,rounding:decimals=3',
        },
      }),
    });
    const res = await app.inject({
      method: 'GET',
      url: '/v1/model',
      headers: { 'x-api-key': 'k-123' },
    });
    expect(res.statusCode, res.body).toBe(200);
    const m = res.json();
    expect(m.name).toBe('fmnist-mlp');
    expect(m.inputShape).toEqual([28, 28, 1]);
    expect(m.numClasses).toBe(10);
    expect(m.classNames[9]).toBe('Ankle boot');
    expect(m.bounds).toEqual([0, 1]);
    expect(m.accepts).toEqual(['application/json', 'image/png', 'image/jpeg']);
    expect(m.guards.auth).toBe('api-key');
    expect(m.guards.output).toEqual([
      { name: 'noise', options: { sigma: 0.01 } },
      { name: 'rounding', options: { decimals: 3 } },
    ]);
    expect(m.guards.applied).toEqual(['output:noise', 'output:rounding']);
    expect(res.body).not.toContain(digest);
    expect(res.body).not.toContain('4242');
    expect(res.body).not.toContain('777');
    expect(res.body).not.toMatch(/seed/);
    await app.close();
  });

  it('/healthz, /readyz, /openapi.json', async () => {
    const app = await createService({
      model: mlp,
      guard: guard({ guards: { apiKeys: [{ id: 'a', sha256: hashApiKey('x') }] } }),
    });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({
      status: 'ready',
    });
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    const predict = doc.paths['/v1/predict'].post;
    expect(Object.keys(predict.requestBody.content).sort()).toEqual([
      'application/json',
      'image/jpeg',
      'image/png',
    ]);
    expect(predict.requestBody.content['application/json'].schema.properties.inputs.maxItems).toBe(
      64,
    );
    expect(Object.keys(predict.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '413', '415', '429']),
    );
    expect(predict.responses['400'].content['application/json'].schema.required).toEqual(['error']);
    expect(predict.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
    expect(doc.paths['/healthz'].get.security).toBeUndefined();
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/metrics',
      '/openapi.json',
      '/readyz',
      '/v1/model',
      '/v1/predict',
    ]);
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    await app.close();
  });

  it('/metrics counts requests, rejections and queries per key', async () => {
    const app = await createService({
      model: mlp,
      guard: guard({ guards: { apiKeys: [{ id: 'alice', sha256: hashApiKey('s3cret') }] } }),
    });
    const auth = { authorization: 'Bearer s3cret' };
    await app.inject(post({ inputs: [nested(images.x, 0), nested(images.x, 1)] }, auth));
    await app.inject(post({ inputs: [nested(images.x, 2)] }, auth));
    await app.inject(post({ inputs: [[1, 2, 3]] }, auth));
    await app.inject(post({ inputs: [nested(images.x, 0)] }));
    await app.inject({ method: 'GET', url: '/no/such/path' });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.body;
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('parry_http_requests_total{route="/v1/predict",method="POST",status="200"}')).toBe(
      2,
    );
    expect(value('parry_http_requests_total{route="/v1/predict",method="POST",status="400"}')).toBe(
      1,
    );
    expect(value('parry_http_requests_total{route="unmatched",method="GET",status="404"}')).toBe(1);
    expect(value('parry_rejections_total{reason="bad_shape"}')).toBe(1);
    expect(value('parry_rejections_total{reason="missing_key"}')).toBe(1);
    expect(value('parry_rejections_total{reason="not_found"}')).toBe(1);
    expect(value('parry_queries_total{key="alice"}')).toBe(3);
    expect(value('parry_http_request_duration_seconds_count{route="/v1/predict"}')).toBe(4);
    expect(text).toMatch(/parry_process_resident_memory_bytes \d+/);
    expect(text).not.toContain('s3cret');
    await app.close();
  });
});

describe('API keys', () => {
  const keys = [
    { id: 'alice', sha256: hashApiKey('alice-key') },
    { id: 'bob', sha256: hashApiKey('bob-key') },
  ];

  it('open without keys; with keys, missing or invalid ones are 401', async () => {
    const open = await createService({ model: mlp, guard: guard() });
    expect((await open.inject(post({ inputs: [nested(images.x, 0)] }))).statusCode).toBe(200);
    await open.close();

    const app = await createService({ model: mlp, guard: guard({ guards: { apiKeys: keys } }) });
    const body = { inputs: [nested(images.x, 0)] };
    const missing = await app.inject(post(body));
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe('missing_key');
    expect(missing.json().error.message).toMatch(/Authorization: Bearer KEY/);
    expect(missing.headers['www-authenticate']).toBe('Bearer');
    const wrong = await app.inject(post(body, { authorization: 'Bearer alice-kez' }));
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error).toEqual({
      code: 'invalid_key',
      message: 'the API key is not valid',
    });
    // The digest itself is not a key.
    const digest = await app.inject(post(body, { 'x-api-key': keys[0].sha256 }));
    expect(digest.statusCode).toBe(401);
    expect((await app.inject(post(body, { authorization: 'bearer bob-key' }))).statusCode).toBe(
      200,
    );
    expect((await app.inject(post(body, { 'x-api-key': 'alice-key' }))).statusCode).toBe(200);
    const model = await app.inject({ method: 'GET', url: '/v1/model' });
    expect(model.statusCode).toBe(401);
    await app.close();
  });
});

describe('quotas', () => {
  it('429 with Retry-After from the token bucket and from the daily quota', async () => {
    let clock = Date.UTC(2024, 5, 1, 18); // 6 hours before the next UTC midnight
    const app = await createService({
      model: new ToyModel(),
      now: () => clock,
      guard: guard({ guards: { quota: { rate: 1, burst: 2, perDay: 5 }, input: { maxBatch: 2 } } }),
    });
    const one = post({ inputs: [toyInput(0)] });
    expect((await app.inject(post({ inputs: [toyInput(0), toyInput(0)] }))).statusCode).toBe(200);
    const limited = await app.inject(one);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    expect(limited.json().error.code).toBe('rate_limited');
    expect(limited.json().error.message).toMatch(/rate limit .* of key 'anonymous'; retry in 1 s/);
    clock += 1000;
    expect((await app.inject(one)).statusCode).toBe(200); // 3 used today
    clock += 10_000;
    expect((await app.inject(post({ inputs: [toyInput(0), toyInput(0)] }))).statusCode).toBe(200); // 5
    clock += 10_000;
    const daily = await app.inject(one);
    expect(daily.statusCode).toBe(429);
    expect(daily.json().error.code).toBe('quota_exceeded');
    expect(Number(daily.headers['retry-after'])).toBe(6 * 3600 - 21);
    expect(daily.json().guards).toBeUndefined();
    await app.close();
  });

  it('the per-address limit refuses with the same error shape', async () => {
    const app = await createService({
      model: new ToyModel(),
      guard: guard({ guards: { perAddress: { max: 2, windowMs: 60_000 } } }),
    });
    const one = post({ inputs: [toyInput(0)] });
    await app.inject(one);
    await app.inject(one);
    const third = await app.inject(one);
    expect(third.statusCode).toBe(429);
    expect(third.json().error.code).toBe('rate_limited');
    expect(third.json().error.message).toMatch(/more than 2 requests from this address/);
    expect(Number(third.headers['retry-after'])).toBeGreaterThan(0);
    // Probes are not limited.
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    await app.close();
  });

  it('the per-address limit also counts requests without a valid key (key guessing)', async () => {
    const app = await createService({
      model: new ToyModel(),
      guard: guard({
        guards: {
          perAddress: { max: 3, windowMs: 60_000 },
          apiKeys: [{ id: 'k', sha256: hashApiKey('right') }],
        },
      }),
    });
    const codes: number[] = [];
    for (const key of ['guess-1', 'guess-2', 'guess-3', 'right']) {
      codes.push(
        (await app.inject(post({ inputs: [toyInput(0)] }, { 'x-api-key': key }))).statusCode,
      );
    }
    expect(codes).toEqual([401, 401, 401, 429]);
    await app.close();
  });
});

describe('micro-batching', () => {
  it('gathers concurrent requests into one forward pass; each gets its own rows', async () => {
    const model = new ToyModel(8);
    const app = await createService({
      model,
      guard: guard({ batching: { maxBatch: 32, maxWaitMs: 100, wait: 'always' } }),
    });
    model.batches.length = 0; // the warm-up pass
    const sizes = [1, 2, 1, 3, 1];
    let next = 0;
    const requests = sizes.map((n) => {
      const labels = Array.from({ length: n }, () => next++);
      return { labels, body: { inputs: labels.map((l) => toyInput(l / 7)) } };
    });
    const responses = await Promise.all(requests.map((r) => app.inject(post(r.body))));
    expect(model.batches).toEqual([8]);
    responses.forEach((res, i) => {
      expect(res.statusCode).toBe(200);
      const got = res.json().predictions.map((p: { label: number; className: string }) => p.label);
      expect(got).toEqual(requests[i].labels);
    });
    await app.close();
  });
});

describe("micro-batching, wait: 'busy' (the default)", () => {
  it('a lone client does not wait out maxWaitMs; concurrent requests are answered', async () => {
    const model = new ToyModel(8);
    const app = await createService({
      model,
      guard: guard({ batching: { maxBatch: 32, maxWaitMs: 5000 } }),
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    // One keep-alive connection, request after request.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ask = (label: number) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({ inputs: [toyInput(label / 7)] });
        const r = http.request(
          `${url}/v1/predict`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json' } },
          (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve(JSON.parse(text).predictions[0].label));
          },
        );
        r.on('error', reject);
        r.end(body);
      });
    model.batches.length = 0;
    const t0 = performance.now();
    for (const l of [3, 4, 5]) expect(await ask(l)).toBe(l);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(model.batches).toEqual([1, 1, 1]);
    agent.destroy();
    const labels = [0, 1, 2, 4, 5, 6];
    const responses = await Promise.all(
      labels.map((l) => app.inject(post({ inputs: [toyInput(l / 7)] }))),
    );
    expect(responses.map((r) => r.json().predictions[0].label)).toEqual(labels);
    await app.close();
  });
});

describe('guards on the answer', () => {
  it('preprocessing: the model answers on the squeezed input', async () => {
    const app = await createService({
      model: mlp,
      guard: guard({ guards: { preprocess: 'squeeze-bits:bits=1' } }),
    });
    const rows = images.x.subarray(0, 2 * images.size);
    const res = await app.inject(post({ inputs: [nested(images.x, 0), nested(images.x, 1)] }));
    expect(res.statusCode, res.body).toBe(200);
    // One bit: every value becomes 0 or 1 (no value of this data set is exactly 1/2).
    const squeezed = Float32Array.from(rows, (v) => (v > 0.5 ? 1 : 0));
    const ref = referenceProbabilities(mlp, squeezed, 2);
    res.json().predictions.forEach((p: { probabilities: number[] }, i: number) => {
      expectClose(p.probabilities, ref[i]);
    });
    expect(res.json().guards['preprocess:squeeze-bits']).toBe('applied');
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await app.inject(post({ inputs: [nested(images.x, i)] }));
    expect(tf.memory().numTensors).toBe(before);
    await app.close();
  });

  it('output policy: top-k keeps the k largest probabilities; labels-only answers one-hot', async () => {
    const ref = referenceProbabilities(mlp, images.x.subarray(0, images.size), 1)[0];
    const sorted = [...ref].sort((a, b) => b - a);
    const topK = await createService({
      model: mlp,
      guard: guard({ guards: { output: 'top-k:k=2' } }),
    });
    const p = (await topK.inject(post({ inputs: [nested(images.x, 0)] }))).json().predictions[0];
    expectClose(
      p.probabilities,
      ref.map((v) => (v >= sorted[1] ? v : 0)),
    );
    expect(p.probabilities.filter((v: number) => v === 0).length).toBe(8);
    await topK.close();
    const labels = await createService({
      model: mlp,
      guard: guard({ guards: { output: 'labels-only' } }),
    });
    const q = (await labels.inject(post({ inputs: [nested(images.x, 0)] }))).json().predictions[0];
    const best = ref.indexOf(sorted[0]);
    expect(q.probabilities).toEqual(ref.map((_, c) => (c === best ? 1 : 0)));
    expect(q.label).toBe(best);
    await labels.close();
  });

  it('randomized smoothing answers a clear input and abstains on a tie', async () => {
    // Two classes: logits [x0 − ½, ½ − x0]: class 0 above ½, class 1 below.
    const model = new ToyModel(2);
    const app = await createService({
      model,
      seed: 3,
      guard: guard({
        guards: { smoothing: { sigma: 0.25, n: 200, alpha: 0.001, batchSize: 200 } },
      }),
    });
    const res = await app.inject(post({ inputs: [toyInput(0.5), toyInput(1), toyInput(0)] }));
    expect(res.statusCode, res.body).toBe(200);
    const [tie, high, low] = res.json().predictions;
    // ToyModel(2): label round(x0): at x0 = 1, P(x0 + ε > ½) = Φ(2) ≈ 0.977 → class 1 is clear.
    expect(high).toEqual({ label: 1, className: 'class-1' });
    expect(low).toEqual({ label: 0, className: 'class-0' });
    // At the boundary the counts are about 100/100: the binomial test cannot reject a tie.
    expect(tie).toEqual({ label: null, abstained: true });
    expect(res.json().guards.smoothing).toBe('applied');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/parry_smoothing_abstentions_total 1/);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await app.inject(post({ inputs: [toyInput(i / 2)] }));
    expect(tf.memory().numTensors).toBe(before);
    await app.close();
  });
});

describe('extraction monitor', () => {
  /** Alarms on the observations listed in `alarmAt` (1-based, per key), recording what it saw. */
  const monitor = (alarmAt: number[] = [3, 4, 5, 6]) => {
    const seen: { key: string; rows: number; labels: (number | null)[] }[] = [];
    return {
      seen,
      observe: (
        key: string,
        _x: Float32Array,
        rows: number,
        labels: readonly (number | null)[],
      ) => {
        seen.push({ key, rows, labels: [...labels] });
        const count = seen.filter((s) => s.key === key).length;
        return { alarm: alarmAt.includes(count), statistic: 0.5 };
      },
    };
  };
  const withMonitor = (
    onAlarm: 'flag' | 'throttle' | 'block',
    extra: Record<string, unknown> = {},
  ) =>
    guard({
      guards: { extractionMonitor: { method: 'prada', onAlarm, throttleSeconds: 30, ...extra } },
    });
  const one = post({ inputs: [toyInput(0), toyInput(1)] });

  it('flag answers and records; the monitor sees the queries with their predicted classes', async () => {
    const m = monitor();
    const flag = await createService({
      model: new ToyModel(),
      guard: withMonitor('flag'),
      monitor: m,
    });
    expect((await flag.inject(one)).json().guards.extractionMonitor).toBe('pass');
    await flag.inject(one);
    const third = await flag.inject(one);
    expect(third.statusCode).toBe(200);
    expect(third.json().guards.extractionMonitor).toBe('alarm');
    // An open service watches each client address (inject comes from 127.0.0.1).
    expect(m.seen).toEqual(
      [1, 2, 3].map(() => ({ key: 'address:127.0.0.1', rows: 2, labels: [0, 7] })),
    );
    expect((await flag.inject({ method: 'GET', url: '/metrics' })).body).toMatch(
      /parry_extraction_alarms_total\{key="anonymous"\} 1/,
    );
    await flag.close();
  });

  it('throttle withholds the alarming answer, refuses the key for throttleSeconds, then lets it try again', async () => {
    let now = Date.UTC(2024, 2, 1, 12);
    const model = new ToyModel();
    const app = await createService({
      model,
      guard: withMonitor('throttle'),
      monitor: monitor([3]),
      now: () => now,
    });
    for (let i = 0; i < 2; i++) expect((await app.inject(one)).statusCode).toBe(200);
    const t = await app.inject(one);
    expect([t.statusCode, t.json().error.code, t.headers['retry-after']]).toEqual([
      429,
      'extraction_throttled',
      '30',
    ]);
    // Inside the window: refused before the model runs, told how long is left.
    const calls = model.batches.length;
    now += 10_500;
    const early = await app.inject(one);
    expect([early.statusCode, early.headers['retry-after']]).toEqual([429, '20']);
    expect(model.batches.length).toBe(calls);
    // After it: the next request is answered once the stream no longer alarms.
    now += 20_000;
    const later = await app.inject(one);
    expect(later.statusCode).toBe(200);
    expect(later.json().guards.extractionMonitor).toBe('pass');
    await app.close();
  });

  it('block withholds the answer (403) and refuses every later request before the model', async () => {
    const model = new ToyModel();
    const app = await createService({ model, guard: withMonitor('block'), monitor: monitor([3]) });
    for (let i = 0; i < 2; i++) await app.inject(one);
    const b = await app.inject(one);
    expect([b.statusCode, b.json().error.code]).toEqual([403, 'extraction_blocked']);
    const calls = model.batches.length;
    const again = await app.inject(one);
    expect([again.statusCode, again.json().error.code]).toEqual([403, 'extraction_blocked']);
    expect(model.batches.length).toBe(calls);
    await app.close();
  });

  it('PRADA from the guard file: one point sent again and again is blocked after minQueries', async () => {
    const model = new ToyModel();
    const app = await createService({
      model,
      guard: withMonitor('block', { minQueries: 20 }),
    });
    const same = post({ inputs: Array.from({ length: 4 }, () => toyInput(0.5)) });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await app.inject(same)).statusCode);
    // 4 queries a request; the first adds no distance: 19 distances after 5 requests, 23 after 6,
    // all zero (a point mass: W = 0) → the sixth answer is withheld, every later request refused.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 403, 403, 403]);
    await app.close();
  });

  it('another key is watched on its own', async () => {
    const keys = [
      { id: 'a', sha256: hashApiKey('key-a') },
      { id: 'b', sha256: hashApiKey('key-b') },
    ];
    const app = await createService({
      model: new ToyModel(),
      guard: guard({
        guards: {
          apiKeys: keys,
          extractionMonitor: { method: 'prada', minQueries: 20, onAlarm: 'block' },
        },
      }),
    });
    const same = (key: string) =>
      post({ inputs: Array.from({ length: 4 }, () => toyInput(0.5)) }, { 'x-api-key': key });
    for (let i = 0; i < 6; i++) await app.inject(same('key-a'));
    expect((await app.inject(same('key-a'))).statusCode).toBe(403);
    expect((await app.inject(same('key-b'))).statusCode).toBe(200);
    await app.close();
  });
});

describe('audit log', () => {
  it('one line per /v1 request: key id, input hash, prediction, verdicts; no input values', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-serve-audit-'));
    const file = path.join(dir, 'audit.log');
    const app = await createService({
      model: new ToyModel(),
      guard: guard({
        guards: { apiKeys: [{ id: 'carol', sha256: hashApiKey('carol-key') }] },
        audit: { path: file },
      }),
    });
    const auth = { authorization: 'Bearer carol-key' };
    const ok = await app.inject(post({ inputs: [toyInput(3 / 7)] }, auth));
    expect(ok.statusCode).toBe(200);
    await app.inject(post({ inputs: [toyInput(2)] }, auth));
    await app.inject(post({ inputs: [toyInput(0)] }));
    await app.inject({
      method: 'POST',
      url: '/v1/predict',
      payload: '{"inputs": [',
      headers: { ...auth, 'content-type': 'application/json' },
    });
    await app.inject({ method: 'GET', url: '/healthz' });
    await app.inject({ method: 'GET', url: '/v1/../../etc/passwd' });
    await app.close();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.route, l.status, l.key])).toEqual([
      ['/v1/predict', 200, 'carol'],
      ['/v1/predict', 400, 'carol'],
      ['/v1/predict', 401, null],
      ['/v1/predict', 400, 'carol'],
      ['unmatched', 404, null],
    ]);
    const [first, rejected, unauthenticated, badJson] = lines;
    expect(badJson.guards).toEqual({ auth: 'pass', input: 'bad_json' });
    const values = new Float32Array([3 / 7, 0, 0, 0]);
    expect(first.inputSha256).toBe(
      createHash('sha256').update(Buffer.from(values.buffer)).digest('hex'),
    );
    expect(first.predictions).toEqual([3]);
    expect(first.rows).toBe(1);
    expect(first.guards).toEqual({ auth: 'pass', input: 'pass', quota: 'pass' });
    expect(typeof first.latencyMs).toBe('number');
    expect(Date.parse(first.time)).not.toBeNaN();
    expect(rejected.error).toBe('out_of_range');
    expect(rejected.guards).toEqual({ auth: 'pass', input: 'out_of_range' });
    expect(rejected.inputSha256).toBeNull();
    expect(unauthenticated.guards).toEqual({ auth: 'missing_key' });
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('carol-key');
    expect(text).not.toContain('"inputs"');
  });

  it('includeInputs: true also writes the input values', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'parry-serve-audit-')), 'audit.log');
    const app = await createService({
      model: new ToyModel(),
      guard: guard({ audit: { path: file, includeInputs: true } }),
    });
    await app.inject(post({ inputs: [toyInput(0.5)] }));
    await app.close();
    const [line] = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(line.inputs).toEqual([0.5, 0, 0, 0]);
  });
});

describe('graceful shutdown', () => {
  it('answers a request still waiting in the batcher, then refuses new ones', async () => {
    const model = new ToyModel();
    const app = await createService({
      model,
      guard: guard({ batching: { maxBatch: 32, maxWaitMs: 5000, wait: 'always' } }),
    });
    const started = performance.now();
    const inFlight = app.inject(post({ inputs: [toyInput(5 / 7)] }));
    await new Promise((r) => setTimeout(r, 20));
    await app.close();
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(res.json().predictions[0].label).toBe(5);
    // Close did not wait for the 5 s batching timer.
    expect(performance.now() - started).toBeLessThan(2000);
    await expect(app.inject({ method: 'GET', url: '/healthz' })).rejects.toThrow();
  });
});
