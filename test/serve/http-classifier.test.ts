/**
 * The endpoint as a QueryClassifier over real HTTP on loopback: against parry's own service
 * (answers equal to the model's softmax, queries counted, cache, limit, labels-only outputs,
 * 429 waited out or ending the stage, 403, bad keys), and against a foreign JSON API through an
 * adapter. Plus the template and path helpers.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type FastifyInstance, fastify } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adapterSchema,
  fillTemplate,
  nestRow,
  readPath,
  retryAfterSeconds,
} from '../../src/serve/endpoint-adapter.js';
import { hashApiKey } from '../../src/serve/guard-config.js';
import {
  EndpointRefusal,
  HttpQueryClassifier,
  QueryLimitReached,
} from '../../src/serve/http-classifier.js';
import { createService } from '../../src/serve/server.js';
import { guard, ToyModel, toyInput } from './helpers.js';

const apps: FastifyInstance[] = [];
afterAll(async () => {
  for (const a of apps) await a.close();
});

async function serve(app: FastifyInstance): Promise<string> {
  apps.push(app);
  return app.listen({ port: 0, host: '127.0.0.1' });
}

/** Rows for ToyModel: first value v, the rest 0. */
const toyRows = (...v: number[]) =>
  tf.tensor(
    v.flatMap((x) => [x, 0, 0, 0]),
    [v.length, 2, 2, 1],
  );

/** ToyModel's softmax written out: logits −(7x − c)², c = 0..7. */
function toySoftmax(x: number): number[] {
  const logits = Array.from({ length: 8 }, (_, c) => -((7 * x - c) ** 2));
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  const s = e.reduce((a, b) => a + b);
  return e.map((v) => v / s);
}

describe('HttpQueryClassifier against parry serve', () => {
  let url: string;
  beforeAll(async () => {
    url = await serve(
      await createService({
        model: new ToyModel(),
        guard: guard({
          guards: {
            apiKeys: [{ id: 'auditor', sha256: hashApiKey('k1') }],
            input: { maxBatch: 3 },
          },
          batching: { maxBatch: 3, maxWaitMs: 0 },
        }),
      }),
    );
  });
  const headers = { authorization: 'Bearer k1' };

  it('learns the model from /v1/model and answers with its probabilities, in requests of maxBatch', async () => {
    const c = await HttpQueryClassifier.connect(url, { headers });
    expect([c.inputShape, c.numClasses, c.bounds, c.info.maxBatch]).toEqual([
      [2, 2, 1],
      8,
      [0, 1],
      3,
    ]);
    const x = toyRows(0, 3 / 7, 0.5, 1, 0.2);
    const p = await c.predict(x);
    const got = p.arraySync() as number[][];
    [0, 3 / 7, 0.5, 1, 0.2].forEach((v, i) => {
      const want = toySoftmax(Math.fround(v));
      for (let k = 0; k < 8; k++) expect(got[i][k]).toBeCloseTo(want[k], 5);
    });
    expect(c.outputs).toBe('scores');
    expect([c.queries, c.requests]).toEqual([5, 2]); // 3 + 2 examples in two POSTs
    // The same examples again: answered from the cache, nothing sent.
    const again = await c.predict(x);
    expect(again.arraySync()).toEqual(got);
    expect([c.queries, c.requests]).toEqual([5, 2]);
    tf.dispose([x, p, again]);
  });

  it('refuses, before sending, a batch past its limit', async () => {
    const c = await HttpQueryClassifier.connect(url, { headers });
    c.limit = 2;
    const x = toyRows(0.1, 0.2, 0.3);
    await expect(c.predict(x)).rejects.toBeInstanceOf(QueryLimitReached);
    expect(c.queries).toBe(0);
    x.dispose();
  });

  it('a wrong key is a one-line error naming the status and code', async () => {
    await expect(
      HttpQueryClassifier.connect(url, { headers: { authorization: 'Bearer nope' } }),
    ).rejects.toThrow(/401 invalid_key: the API key is not valid/);
    await expect(HttpQueryClassifier.connect('ftp://x')).rejects.toThrow(/expected an http/);
  });

  it('labels-only endpoints answer one-hot rows', async () => {
    const u = await serve(
      await createService({
        model: new ToyModel(),
        guard: guard({ guards: { output: 'labels-only' } }),
      }),
    );
    const c = await HttpQueryClassifier.connect(u);
    const x = toyRows(3 / 7);
    const p = await c.predict(x);
    expect(Array.from(p.dataSync())).toEqual([0, 0, 0, 1, 0, 0, 0, 0]);
    expect(c.outputs).toBe('labels');
    tf.dispose([x, p]);
  });
});

describe('HttpQueryClassifier and refusals', () => {
  it('waits out a short Retry-After, gives up on a long one, and ends the stage on 403', async () => {
    // A token bucket of 2 refilled at 1 per second: the third example waits 1 s.
    const u = await serve(
      await createService({
        model: new ToyModel(),
        guard: guard({
          guards: { quota: { rate: 1, burst: 2, perDay: 4 }, input: { maxBatch: 1 } },
        }),
      }),
    );
    const waits: number[] = [];
    const c = await HttpQueryClassifier.connect(u, {
      maxWaitSeconds: 5,
      sleep: async (ms) => {
        waits.push(ms);
        await new Promise((r) => setTimeout(r, ms));
      },
    });
    const x = toyRows(0.1, 0.2, 0.3);
    (await c.predict(x)).dispose();
    expect(waits).toEqual([1000]);
    expect(c.waitedSeconds).toBe(1);
    // The day's quota (4) is then nearly used: the fifth example waits until midnight.
    const y = toyRows(0.4, 0.5);
    const refusal = await c.predict(y).catch((e) => e);
    expect(refusal).toBeInstanceOf(EndpointRefusal);
    expect(refusal).toMatchObject({ status: 429, errorCode: 'quota_exceeded' });
    expect(refusal.retryAfterSeconds).toBeGreaterThan(5);
    expect(c.queries).toBe(4);
    tf.dispose([x, y]);

    const blocked = fastify();
    blocked.get('/v1/model', async () => ({
      inputShape: [2, 2, 1],
      numClasses: 8,
      bounds: [0, 1],
      guards: {},
    }));
    blocked.post('/v1/predict', async (_req, reply) =>
      reply.code(403).send({ error: { code: 'extraction_blocked', message: 'blocked' } }),
    );
    const b = await HttpQueryClassifier.connect(await serve(blocked));
    const z = toyRows(0.1);
    await expect(b.predict(z)).rejects.toMatchObject({
      status: 403,
      errorCode: 'extraction_blocked',
    });
    z.dispose();
  });

  it('retries a 5xx, then reports it', async () => {
    let calls = 0;
    const flaky = fastify();
    flaky.post('/p', async (_req, reply) => {
      calls++;
      if (calls < 3) return reply.code(503).send('busy');
      return { out: [[0.25, 0.75]] };
    });
    const adapter = adapterSchema.parse({
      inputShape: [2],
      numClasses: 2,
      request: { path: '/p', body: { x: '$inputs' } },
      response: { probabilities: 'out' },
    });
    const c = await HttpQueryClassifier.connect(await serve(flaky), {
      adapter,
      sleep: async () => {},
    });
    const x = tf.tensor([[0.1, 0.2]]);
    const p = await c.predict(x);
    expect(Array.from(p.dataSync())).toEqual([0.25, 0.75]);
    expect(calls).toBe(3);
    tf.dispose([x, p]);
  });
});

describe('adapters for other APIs', () => {
  it('a TF-Serving-like API: request template, nested rows, probabilities path', async () => {
    const seen: unknown[] = [];
    const api = fastify();
    api.post('/v1/models/toy:predict', async (req) => {
      const body = req.body as { signature: string; instances: number[][][][] };
      seen.push(body);
      return {
        predictions: body.instances.map((inst) => ({ scores: toySoftmax(inst[0][0][0]) })),
      };
    });
    const adapter = adapterSchema.parse({
      inputShape: [2, 2, 1],
      numClasses: 8,
      maxBatch: 2,
      request: {
        path: '/v1/models/toy:predict',
        body: { signature: 'serving', instances: '$inputs' },
      },
      response: { probabilities: 'predictions[*].scores' },
    });
    const c = await HttpQueryClassifier.connect(await serve(api), { adapter });
    const x = toyRows(0, 0.5, 1);
    const p = (await c.predict(x)).arraySync() as number[][];
    expect(p[1]).toEqual(toySoftmax(0.5).map(Math.fround));
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual({ signature: 'serving', instances: [toyInput(0), toyInput(0.5)] });
    x.dispose();
  });

  it('a labels API with flat rows', async () => {
    const api = fastify();
    api.post('/', async (req) => ({
      classes: (req.body as { rows: number[][] }).rows.map((r) => (r[0] > 0.5 ? 1 : 0)),
    }));
    const adapter = adapterSchema.parse({
      inputShape: [2, 2, 1],
      numClasses: 2,
      request: { body: { rows: '$inputs' }, layout: 'flat' },
      response: { labels: 'classes' },
    });
    const c = await HttpQueryClassifier.connect(await serve(api), { adapter });
    const x = toyRows(0.9, 0.1);
    expect(Array.from((await c.predict(x)).dataSync())).toEqual([0, 1, 1, 0]);
    expect(c.outputs).toBe('labels');
    x.dispose();
  });

  it('checks adapter files and answers, naming what is wrong', () => {
    expect(() =>
      adapterSchema.parse({ inputShape: [2], numClasses: 2, request: { body: {} }, response: {} }),
    ).toThrow(/exactly one of probabilities or labels/);
    expect(() => fillTemplate({ a: 1 }, [])).toThrow(/"\$inputs" exactly once, found 0/);
    expect(fillTemplate({ a: ['$inputs'], b: 'x' }, [1])).toEqual({ a: [[1]], b: 'x' });
    expect(readPath({ a: [{ b: 1 }, { b: 2 }] }, 'a[*].b')).toEqual([1, 2]);
    expect(readPath([[1], [2]], '[*]')).toEqual([[1], [2]]);
    expect(() => readPath({ a: 1 }, 'b')).toThrow(/no 'b' at '\(root\)'/);
    expect(() => readPath({ a: 1 }, 'a[*]')).toThrow(/'a' is not an array/);
  });

  it('prints float32 values so that they read back exactly', () => {
    const row = Float32Array.from([0.1, 1 / 3, 0, 1, 1e-8, 0.99999994]);
    const printed = nestRow(row, [6]) as number[];
    expect(Float32Array.from(printed)).toEqual(row);
    expect(JSON.stringify(printed).length).toBeLessThan(70);
    expect(nestRow(Float32Array.from([1, 2, 3, 4]), [2, 2, 1])).toEqual([
      [[1], [2]],
      [[3], [4]],
    ]);
  });

  it('reads Retry-After as seconds or as a date', () => {
    expect(retryAfterSeconds('30')).toBe(30);
    expect(retryAfterSeconds(null)).toBeUndefined();
    const now = Date.UTC(2024, 2, 1, 12);
    expect(retryAfterSeconds(new Date(now + 90_500).toUTCString(), now)).toBe(90);
    expect(retryAfterSeconds('soon')).toBeUndefined();
  });
});
