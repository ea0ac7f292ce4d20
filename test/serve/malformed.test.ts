/**
 * Malformed and hostile requests: each gets the right 4xx with `{ error: { code, message } }`
 * naming the problem, and the service stays healthy and correct afterwards, without leaking
 * tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { InjectOptions } from 'fastify';
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

const KEY = 'good-key-0123';
const auth = { authorization: `Bearer ${KEY}` };
const images = testImages(2);
const zeros = () => new Array(784).fill(0);

let mlp: TfjsClassifier;
let app: Awaited<ReturnType<typeof createService>>;

beforeAll(async () => {
  mlp = await loadMlp();
  app = await createService({
    model: mlp,
    guard: guard({
      guards: {
        apiKeys: [{ id: 'tester', sha256: hashApiKey(KEY) }],
        input: { maxBatch: 64, maxBodyBytes: 200_000 },
      },
    }),
  });
});
afterAll(async () => {
  await app.close();
  mlp.dispose();
});

const json = (payload: string, headers: Record<string, string> = auth): InjectOptions => ({
  method: 'POST',
  url: '/v1/predict',
  payload,
  headers: { 'content-type': 'application/json', ...headers },
});
const body = (value: unknown, headers?: Record<string, string>) =>
  json(JSON.stringify(value), headers);
const raw = (payload: Buffer | string, type: string): InjectOptions => ({
  method: 'POST',
  url: '/v1/predict',
  payload,
  headers: { 'content-type': type, ...auth },
});
const get = (url: string): InjectOptions => ({ method: 'GET', url, headers: auth });

function pngOf(width: number, height: number): Buffer {
  const img = new PNG({ width, height });
  img.data.fill(255);
  return PNG.sync.write(img);
}
const goodPng = pngOf(28, 28);
/** An example whose value at (r, c) is v, zeros elsewhere. */
const withValue = (v: unknown, r = 3, c = 4) => {
  const ex = nested(new Float32Array(784), 0) as unknown[][][];
  ex[r][c][0] = v;
  return ex;
};
const deep = (depth: number): unknown => (depth === 0 ? 0 : [deep(depth - 1)]);

/** [name, request, status, error code, message pattern] */
const CASES: [string, InjectOptions, number, string, RegExp][] = [
  ['bad JSON', json('{"inputs": [[0, 1'), 400, 'bad_json', /not valid JSON: .*position/],
  ['empty JSON body', json(''), 400, 'bad_json', /body is empty/],
  ['JSON array body', body([1, 2]), 400, 'bad_request', /body: must be object/],
  ['no inputs', body({}), 400, 'missing_field', /missing field 'inputs'/],
  ['inputs not a list', body({ inputs: 'abc' }), 400, 'bad_request', /inputs: must be array/],
  [
    'no examples',
    body({ inputs: [] }),
    400,
    'bad_request',
    /inputs: must NOT have fewer than 1 items/,
  ],
  ['example not a list', body({ inputs: [5] }), 400, 'bad_request', /inputs\[0\]: must be array/],
  [
    'too many examples',
    body({ inputs: Array.from({ length: 65 }, zeros) }),
    400,
    'too_many_inputs',
    /at most 64 examples per request/,
  ],
  [
    'wrong shape (27 rows)',
    body({ inputs: [nested(new Float32Array(784), 0).slice(1)] }),
    400,
    'bad_shape',
    /inputs\[0\] has 27 items, expected 28/,
  ],
  [
    'wrong flat length',
    body({ inputs: [new Array(783).fill(0)] }),
    400,
    'bad_shape',
    /expected shape \[28,28,1\]/,
  ],
  [
    'too deep',
    body({ inputs: [deep(3000)] }),
    400,
    'bad_shape',
    /inputs\[0\] has 1 items, expected 28/,
  ],
  [
    'a deep array as a value',
    body({ inputs: [withValue(deep(2000))] }),
    400,
    'bad_value',
    /inputs\[0\]\[3\]\[4\]\[0\]: expected a number, got an array of 1/,
  ],
  [
    'an object as a value',
    body({ inputs: [withValue({ a: 1 })] }),
    400,
    'bad_value',
    /expected a number, got an object/,
  ],
  [
    'NaN (serialised as null)',
    body({ inputs: [withValue(Number.NaN)] }),
    400,
    'bad_value',
    /inputs\[0\]\[3\]\[4\]\[0\]: expected a number, got null/,
  ],
  ['NaN as a string', body({ inputs: [withValue('NaN')] }), 400, 'bad_value', /got "NaN"/],
  [
    'literal NaN',
    json(`{"inputs": [[${'0,'.repeat(783)}NaN]]}`),
    400,
    'bad_json',
    /not valid JSON/,
  ],
  [
    'Infinity',
    json(`{"inputs": [[${'0,'.repeat(783)}1e999]]}`),
    400,
    'not_finite',
    /inputs\[0\]\[783\]: Infinity is not a finite number/,
  ],
  [
    '-Infinity',
    json(`{"inputs": [[-1e999${',0'.repeat(783)}]]}`),
    400,
    'not_finite',
    /inputs\[0\]\[0\]: -Infinity/,
  ],
  [
    'above the bounds',
    body({ inputs: [withValue(1.5)] }),
    400,
    'out_of_range',
    /inputs\[0\]\[3\]\[4\]\[0\]: 1\.5 is outside the model's bounds \[0, 1\]/,
  ],
  [
    'below the bounds',
    body({ inputs: [withValue(-0.01)] }),
    400,
    'out_of_range',
    /-0\.01 is outside/,
  ],
  [
    'a boolean value',
    body({ inputs: [withValue(true)] }),
    400,
    'bad_value',
    /expected a number, got true/,
  ],
  [
    'huge body',
    json(`{"inputs": [${'0,'.repeat(150_000)}0]}`),
    413,
    'body_too_large',
    /larger than 200000 bytes/,
  ],
  [
    'huge image',
    raw(Buffer.alloc(300_000, 1), 'image/png'),
    413,
    'body_too_large',
    /guards\.input\.maxBodyBytes/,
  ],
  [
    'text/plain',
    raw('inputs=0', 'text/plain'),
    415,
    'unsupported_media_type',
    /content type 'text\/plain' is not accepted; send application\/json, image\/png or image\/jpeg/,
  ],
  [
    'application/xml',
    raw('<inputs/>', 'application/xml'),
    415,
    'unsupported_media_type',
    /'application\/xml' is not accepted/,
  ],
  [
    'truncated PNG',
    raw(goodPng.subarray(0, goodPng.length - 12), 'image/png'),
    400,
    'bad_image',
    /image\/png: cannot decode the image/,
  ],
  ['PNG header only', raw(goodPng.subarray(0, 40), 'image/png'), 400, 'bad_image', /cannot decode/],
  [
    'PNG of the wrong size',
    raw(pngOf(32, 28), 'image/png'),
    400,
    'bad_shape',
    /the image is 32×28 pixels, the model takes 28×28/,
  ],
  [
    'not a PNG',
    raw(Buffer.from('GIF89a this is a gif, really'), 'image/png'),
    400,
    'bad_image',
    /not a PNG/,
  ],
  ['not a JPEG', raw(goodPng, 'image/jpeg'), 400, 'bad_image', /not a JPEG/],
  ['missing key', body({ inputs: [zeros()] }, {}), 401, 'missing_key', /API key is required/],
  [
    'invalid key',
    body({ inputs: [zeros()] }, { authorization: 'Bearer guess' }),
    401,
    'invalid_key',
    /not valid/,
  ],
  ['missing key and bad JSON', json('{"inputs": [', {}), 401, 'missing_key', /API key is required/],
  [
    'malformed Authorization',
    body({ inputs: [zeros()] }, { authorization: 'Basic Zm9vOmJhcg==' }),
    401,
    'missing_key',
    /API key is required/,
  ],
  [
    '__proto__ in the body',
    json(`{"inputs": [[${'0,'.repeat(783)}0]], "__proto__": {"polluted": 1}}`),
    400,
    'bad_json',
    /the body has a '__proto__' key, which is refused/,
  ],
  [
    'path in an extra field',
    body({ inputs: [zeros()], model: '../../etc/passwd' }),
    400,
    'unknown_field',
    /body: unknown field 'model'/,
  ],
  [
    'path in an extra file field',
    body({ inputs: [zeros()], file: '/etc/shadow' }),
    400,
    'unknown_field',
    /unknown field 'file'/,
  ],
  ['traversal in the URL', get('/v1/../../etc/passwd'), 404, 'not_found', /no route GET/],
  [
    'encoded traversal',
    get('/v1/model/..%2F..%2F..%2Fetc%2Fpasswd'),
    404,
    'not_found',
    /no route GET/,
  ],
  ['traversal below a route', get('/v1/predict/../../../etc/passwd'), 404, 'not_found', /no route/],
  ['unknown route', get('/v2/predict'), 404, 'not_found', /no route GET \/v2\/predict/],
  ['wrong method', get('/v1/predict'), 404, 'not_found', /no route GET \/v1\/predict/],
];

describe('malformed requests', () => {
  for (const [name, request, status, code, message] of CASES) {
    it(`${name} → ${status} ${code}`, async () => {
      const res = await app.inject(request);
      expect(res.statusCode, res.body).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      const e = res.json().error;
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
      expect(Object.keys(res.json())).toEqual(['error']);
    });
  }

  it('over quota → 429 quota_exceeded with Retry-After', async () => {
    const small = await createService({
      model: new ToyModel(),
      guard: guard({ guards: { quota: { rate: 100, burst: 64, perDay: 2 } } }),
    });
    const one = body({ inputs: [toyInput(0)] }, {});
    expect((await small.inject(one)).statusCode).toBe(200);
    expect((await small.inject(one)).statusCode).toBe(200);
    const over = await small.inject(one);
    expect(over.statusCode).toBe(429);
    expect(over.json().error.code).toBe('quota_exceeded');
    expect(over.json().error.message).toMatch(/daily quota \(guards\.quota\.perDay\)/);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    await small.close();
  });

  it('the service is healthy and correct afterwards, and leaks no tensors over 200 requests', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const valid = body({ inputs: [nested(images.x, 0), nested(images.x, 1)] });
    const ref = referenceProbabilities(mlp, images.x, 2);
    const check = async () => {
      const res = await app.inject(valid);
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
        const [, request, status] = CASES[i % CASES.length];
        expect((await app.inject(request)).statusCode).toBe(status);
      } else {
        const res = await app.inject(i % 2 === 0 ? valid : raw(goodPng, 'image/png'));
        expect(res.statusCode).toBe(200);
      }
    }
    expect(tf.memory().numTensors).toBe(before);
    await check();
  });
});
