/**
 * Malformed and hostile requests to `parry serve`, as data: each with the 4xx status, error code
 * and message the service must answer. Shared by test/serve/malformed.test.ts and
 * bench/serve-malformed.ts (which prints them as a table), so keep this free of test-runner
 * imports.
 *
 * The cases assume a service on a model of input shape [28, 28, 1] and bounds [0, 1] (the
 * bundled Fashion-MNIST models) behind MALFORMED_GUARD.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { type GuardConfigInput, hashApiKey } from '../src/serve/guard-config.js';

/** The one valid API key of MALFORMED_GUARD (key id 'tester'). */
export const MALFORMED_KEY = 'good-key-0123';
/** The body limit of MALFORMED_GUARD. */
export const MAX_BODY_BYTES = 200_000;

/** The guard file the cases are written against (quotas loose enough never to interfere). */
export function malformedGuard(auditPath?: string): GuardConfigInput {
  return {
    guards: {
      apiKeys: [{ id: 'tester', sha256: hashApiKey(MALFORMED_KEY) }],
      input: { maxBatch: 64, maxBodyBytes: MAX_BODY_BYTES },
      quota: { rate: 1e6, burst: 1e6, perDay: 1e9 },
      perAddress: { max: 1e6, windowMs: 60_000 },
    },
    ...(auditPath ? { audit: { path: auditPath } } : {}),
  };
}

/** A request as both fastify's `inject` and a raw HTTP client take it (the URL is sent as is). */
export interface MalformedRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
}

/** Bytes sent as they are on a fresh connection, then half-closed: what no HTTP client sends. */
export interface WireRequest {
  wire: string;
}

export interface MalformedCase {
  name: string;
  /** What is wrong, by family: json, shape, value, size, type, image, key, path, http. */
  kind: 'json' | 'shape' | 'value' | 'size' | 'type' | 'image' | 'key' | 'path' | 'http';
  request: MalformedRequest | WireRequest;
  status: number;
  code: string;
  /** The message must name the problem. */
  message: RegExp;
}

const auth = { authorization: `Bearer ${MALFORMED_KEY}` };
const WIRE_AUTH = `Authorization: Bearer ${MALFORMED_KEY}\r\n`;
const WIRE_HEAD = `Host: x\r\n${WIRE_AUTH}Content-Type: application/json\r\n`;
const zeros = (n = 784) => new Array<number>(n).fill(0);
/** A [28][28][1] example of zeros with `v` at (r, c). */
const withValue = (v: unknown, r = 3, c = 4) => {
  const ex: unknown[][][] = Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => [0]));
  ex[r][c][0] = v;
  return ex;
};
const deep = (depth: number): unknown => (depth === 0 ? 0 : [deep(depth - 1)]);

const json = (payload: string, headers: Record<string, string> = auth): MalformedRequest => ({
  method: 'POST',
  url: '/v1/predict',
  payload,
  headers: { 'content-type': 'application/json', ...headers },
});
const body = (value: unknown, headers?: Record<string, string>) =>
  json(JSON.stringify(value), headers);
const raw = (payload: Buffer | string, type: string): MalformedRequest => ({
  method: 'POST',
  url: '/v1/predict',
  payload,
  headers: { 'content-type': type, ...auth },
});
const get = (url: string): MalformedRequest => ({ method: 'GET', url, headers: auth });

/** A white PNG of the given size. */
export function pngOf(width: number, height: number): Buffer {
  const img = new PNG({ width, height });
  img.data.fill(255);
  return PNG.sync.write(img);
}

function jpegOf(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4, 200);
  return Buffer.from(jpeg.encode({ data, width, height }, 90).data);
}

/** `png` with its IHDR size fields set to width × height (the CRC is left wrong). */
function withDeclaredSize(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  return out;
}

/** `png` with one byte of its image data flipped (the chunk's CRC no longer matches). */
function corrupted(png: Buffer): Buffer {
  const out = Buffer.from(png);
  const idat = out.indexOf('IDAT', 0, 'latin1');
  out[idat + 8] ^= 0xff;
  return out;
}

/** Every malformed request, in a fixed order. */
export function malformedCases(): MalformedCase[] {
  const goodPng = pngOf(28, 28);
  const goodJpeg = jpegOf(28, 28);
  const valid = JSON.stringify({ inputs: [zeros()] });
  const c = (
    kind: MalformedCase['kind'],
    name: string,
    request: MalformedRequest | WireRequest,
    status: number,
    code: string,
    message: RegExp,
  ): MalformedCase => ({ name, kind, request, status, code, message });
  return [
    // Bad JSON and bodies of the wrong form.
    c('json', 'bad JSON', json('{"inputs": [[0, 1'), 400, 'bad_json', /not valid JSON: .*position/),
    c('json', 'empty JSON body', json(''), 400, 'bad_json', /body is empty/),
    c('json', 'trailing garbage', json(`${valid} x`), 400, 'bad_json', /not valid JSON/),
    c(
      'json',
      'bytes that are not UTF-8',
      raw(
        Buffer.concat([
          Buffer.from('{"inputs": [['),
          Buffer.from([0xff, 0xfe]),
          Buffer.from(']]}'),
        ]),
        'application/json',
      ),
      400,
      'bad_json',
      /not valid JSON/,
    ),
    c(
      'json',
      'a hex literal',
      json(`{"inputs": [[0x1${',0'.repeat(783)}]]}`),
      400,
      'bad_json',
      /not valid JSON/,
    ),
    c('json', 'JSON null body', json('null'), 400, 'bad_request', /body: must be object/),
    c('json', 'JSON array body', body([1, 2]), 400, 'bad_request', /body: must be object/),
    c('json', 'JSON string body', body('inputs'), 400, 'bad_request', /body: must be object/),
    c('json', 'no inputs', body({}), 400, 'missing_field', /missing field 'inputs'/),
    c('json', 'inputs null', body({ inputs: null }), 400, 'bad_request', /inputs: must be array/),
    c(
      'json',
      'inputs not a list',
      body({ inputs: 'abc' }),
      400,
      'bad_request',
      /inputs: must be array/,
    ),
    c(
      'json',
      'no examples',
      body({ inputs: [] }),
      400,
      'bad_request',
      /inputs: must NOT have fewer than 1 items/,
    ),
    c(
      'json',
      'example not a list',
      body({ inputs: [5] }),
      400,
      'bad_request',
      /inputs\[0\]: must be array/,
    ),
    c(
      'json',
      'example an object',
      body({ inputs: [{ a: 1 }] }),
      400,
      'bad_request',
      /inputs\[0\]: must be array/,
    ),
    c(
      'json',
      '__proto__ in the body',
      json(`{"inputs": [[${'0,'.repeat(783)}0]], "__proto__": {"polluted": 1}}`),
      400,
      'bad_json',
      /the body has a '__proto__' key, which is refused/,
    ),
    c(
      'json',
      'constructor in the body',
      json(`{"inputs": [[${'0,'.repeat(783)}0]], "constructor": {"prototype": {}}}`),
      400,
      'bad_json',
      /the body has a 'constructor' key/,
    ),
    c(
      'json',
      '__proto__ as an example',
      json('{"inputs": [{"__proto__": {"polluted": 1}}]}'),
      400,
      'bad_request',
      /inputs\[0\]: must be array/,
    ),
    // Wrong shape.
    c(
      'shape',
      'too many examples',
      body({ inputs: Array.from({ length: 65 }, () => zeros()) }),
      400,
      'too_many_inputs',
      /at most 64 examples per request/,
    ),
    c(
      'shape',
      'wrong shape (27 rows)',
      body({ inputs: [withValue(0).slice(1)] }),
      400,
      'bad_shape',
      /inputs\[0\] has 27 items, expected 28/,
    ),
    c(
      'shape',
      'two channels',
      body({ inputs: [withValue(0).map((row) => row.map(() => [0, 0]))] }),
      400,
      'bad_shape',
      /inputs\[0\]\[0\]\[0\] has 2 items, expected 1/,
    ),
    c(
      'shape',
      'no channel axis',
      body({ inputs: [withValue(0).map((row) => row.map(() => 0))] }),
      400,
      'bad_shape',
      /inputs\[0\]\[0\]\[0\] is 0, not an array of 1/,
    ),
    c(
      'shape',
      'wrong flat length',
      body({ inputs: [zeros(783)] }),
      400,
      'bad_shape',
      /expected shape \[28,28,1\]/,
    ),
    c(
      'shape',
      'flat, one value too many',
      body({ inputs: [zeros(785)] }),
      400,
      'bad_shape',
      /785 items, expected 28/,
    ),
    c(
      'shape',
      'too deep',
      body({ inputs: [deep(3000)] }),
      400,
      'bad_shape',
      /inputs\[0\] has 1 items, expected 28/,
    ),
    // Values that are not finite numbers in the bounds.
    c(
      'value',
      'a deep array as a value',
      body({ inputs: [withValue(deep(2000))] }),
      400,
      'bad_value',
      /inputs\[0\]\[3\]\[4\]\[0\]: expected a number, got an array of 1/,
    ),
    c(
      'value',
      'an object as a value',
      body({ inputs: [withValue({ a: 1 })] }),
      400,
      'bad_value',
      /expected a number, got an object/,
    ),
    c(
      'value',
      'NaN (serialised as null)',
      body({ inputs: [withValue(Number.NaN)] }),
      400,
      'bad_value',
      /inputs\[0\]\[3\]\[4\]\[0\]: expected a number, got null/,
    ),
    c(
      'value',
      'NaN as a string',
      body({ inputs: [withValue('NaN')] }),
      400,
      'bad_value',
      /got "NaN"/,
    ),
    c(
      'value',
      'literal NaN',
      json(`{"inputs": [[${'0,'.repeat(783)}NaN]]}`),
      400,
      'bad_json',
      /not valid JSON/,
    ),
    c(
      'value',
      'a number as a string',
      body({ inputs: [withValue('0.5')] }),
      400,
      'bad_value',
      /expected a number, got "0\.5"/,
    ),
    c(
      'value',
      'a boolean value',
      body({ inputs: [withValue(true)] }),
      400,
      'bad_value',
      /expected a number, got true/,
    ),
    c(
      'value',
      'Infinity',
      json(`{"inputs": [[${'0,'.repeat(783)}1e999]]}`),
      400,
      'not_finite',
      /inputs\[0\]\[783\]: Infinity is not a finite number/,
    ),
    c(
      'value',
      '-Infinity',
      json(`{"inputs": [[-1e999${',0'.repeat(783)}]]}`),
      400,
      'not_finite',
      /inputs\[0\]\[0\]: -Infinity/,
    ),
    c(
      'value',
      'above the bounds',
      body({ inputs: [withValue(1.5)] }),
      400,
      'out_of_range',
      /inputs\[0\]\[3\]\[4\]\[0\]: 1\.5 is outside the model's bounds \[0, 1\]/,
    ),
    c(
      'value',
      'below the bounds',
      body({ inputs: [withValue(-0.01)] }),
      400,
      'out_of_range',
      /-0\.01 is outside/,
    ),
    c(
      'value',
      'a huge number',
      body({ inputs: [withValue(1e308)] }),
      400,
      'out_of_range',
      /1e\+308 is outside/,
    ),
    // Bodies over the size limit.
    c(
      'size',
      'huge JSON body',
      json(`{"inputs": [${'0,'.repeat(150_000)}0]}`),
      413,
      'body_too_large',
      /larger than 200000 bytes/,
    ),
    c(
      'size',
      'huge PNG',
      raw(Buffer.alloc(300_000, 1), 'image/png'),
      413,
      'body_too_large',
      /guards\.input\.maxBodyBytes/,
    ),
    c(
      'size',
      'huge JPEG',
      raw(Buffer.alloc(300_000, 1), 'image/jpeg'),
      413,
      'body_too_large',
      /guards\.input\.maxBodyBytes/,
    ),
    c(
      'size',
      'PNG declaring 100000×100000 pixels',
      raw(withDeclaredSize(goodPng, 100_000, 100_000), 'image/png'),
      400,
      'bad_shape',
      /the image is 100000×100000 pixels, the model takes 28×28/,
    ),
    // Content types the service does not take.
    c(
      'type',
      'text/plain',
      raw('inputs=0', 'text/plain'),
      415,
      'unsupported_media_type',
      /content type 'text\/plain' is not accepted; send application\/json, image\/png or image\/jpeg/,
    ),
    c(
      'type',
      'application/xml',
      raw('<inputs/>', 'application/xml'),
      415,
      'unsupported_media_type',
      /'application\/xml' is not accepted/,
    ),
    c(
      'type',
      'image/gif',
      raw(Buffer.from('GIF89a'), 'image/gif'),
      415,
      'unsupported_media_type',
      /'image\/gif' is not accepted/,
    ),
    c(
      'type',
      'a form',
      raw('inputs=0', 'application/x-www-form-urlencoded'),
      415,
      'unsupported_media_type',
      /'application\/x-www-form-urlencoded' is not accepted/,
    ),
    c(
      'type',
      'multipart',
      raw(
        '--b\r\ncontent-disposition: form-data; name="inputs"\r\n\r\n0\r\n--b--\r\n',
        'multipart/form-data; boundary=b',
      ),
      415,
      'unsupported_media_type',
      /'multipart\/form-data; boundary=b' is not accepted/,
    ),
    c(
      'type',
      'no content type',
      { method: 'POST', url: '/v1/predict', payload: valid, headers: { ...auth } },
      415,
      'unsupported_media_type',
      /a body without a content type is not accepted/,
    ),
    c(
      'type',
      'a PNG sent as JSON',
      raw(goodPng, 'application/json'),
      400,
      'bad_json',
      /not valid JSON/,
    ),
    // Images that do not decode or do not fit.
    c(
      'image',
      'truncated PNG',
      raw(goodPng.subarray(0, goodPng.length - 12), 'image/png'),
      400,
      'bad_image',
      /image\/png: cannot decode the image/,
    ),
    c(
      'image',
      'PNG header only',
      raw(goodPng.subarray(0, 40), 'image/png'),
      400,
      'bad_image',
      /cannot decode/,
    ),
    c(
      'image',
      'empty PNG',
      raw(Buffer.alloc(0), 'image/png'),
      400,
      'bad_image',
      /image\/png: the body is empty/,
    ),
    c(
      'image',
      'corrupted PNG data',
      raw(corrupted(goodPng), 'image/png'),
      400,
      'bad_image',
      /image\/png: cannot decode the image/,
    ),
    c(
      'image',
      'PNG of the wrong size',
      raw(pngOf(32, 28), 'image/png'),
      400,
      'bad_shape',
      /the image is 32×28 pixels, the model takes 28×28/,
    ),
    c(
      'image',
      'not a PNG',
      raw(Buffer.from('GIF89a this is a gif, really'), 'image/png'),
      400,
      'bad_image',
      /not a PNG/,
    ),
    c('image', 'a PNG sent as JPEG', raw(goodPng, 'image/jpeg'), 400, 'bad_image', /not a JPEG/),
    c(
      'image',
      'truncated JPEG',
      raw(goodJpeg.subarray(0, goodJpeg.length - 40), 'image/jpeg'),
      400,
      'bad_image',
      /image\/jpeg: cannot decode the image/,
    ),
    c(
      'image',
      'JPEG of the wrong size',
      raw(jpegOf(28, 30), 'image/jpeg'),
      400,
      'bad_shape',
      /the image is 28×30 pixels, the model takes 28×28/,
    ),
    // Missing and invalid API keys.
    c(
      'key',
      'missing key',
      body({ inputs: [zeros()] }, {}),
      401,
      'missing_key',
      /API key is required/,
    ),
    c(
      'key',
      'invalid key',
      body({ inputs: [zeros()] }, { authorization: 'Bearer guess' }),
      401,
      'invalid_key',
      /not valid/,
    ),
    c(
      'key',
      'invalid X-API-Key',
      body({ inputs: [zeros()] }, { 'x-api-key': 'guess-again' }),
      401,
      'invalid_key',
      /not valid/,
    ),
    c(
      'key',
      'empty Bearer',
      body({ inputs: [zeros()] }, { authorization: 'Bearer ' }),
      401,
      'missing_key',
      /API key is required/,
    ),
    c(
      'key',
      'a 10 kB key',
      body({ inputs: [zeros()] }, { authorization: `Bearer ${'k'.repeat(10_000)}` }),
      401,
      'invalid_key',
      /not valid/,
    ),
    c(
      'key',
      'missing key and bad JSON',
      json('{"inputs": [', {}),
      401,
      'missing_key',
      /API key is required/,
    ),
    c(
      'key',
      'malformed Authorization',
      body({ inputs: [zeros()] }, { authorization: 'Basic Zm9vOmJhcg==' }),
      401,
      'missing_key',
      /API key is required/,
    ),
    // Paths where the service takes none (body fields, query parameters, the URL).
    c(
      'path',
      'path in an extra field',
      body({ inputs: [zeros()], model: '../../etc/passwd' }),
      400,
      'unknown_field',
      /body: unknown field 'model'/,
    ),
    c(
      'path',
      'path in an extra file field',
      body({ inputs: [zeros()], file: '/etc/shadow' }),
      400,
      'unknown_field',
      /unknown field 'file'/,
    ),
    c(
      'path',
      'path in a query parameter',
      { ...json(valid), url: '/v1/predict?model=../../etc/passwd' },
      400,
      'unknown_parameter',
      /query: unknown parameter 'model'/,
    ),
    c(
      'path',
      'path in a query parameter of /v1/model',
      get('/v1/model?file=%2Fetc%2Fpasswd'),
      400,
      'unknown_parameter',
      /query: unknown parameter 'file'/,
    ),
    c(
      'path',
      'traversal in the URL',
      get('/v1/../../etc/passwd'),
      404,
      'not_found',
      /no route GET/,
    ),
    c(
      'path',
      'encoded traversal',
      get('/v1/model/..%2F..%2F..%2Fetc%2Fpasswd'),
      404,
      'not_found',
      /no route GET/,
    ),
    c(
      'path',
      'backslash traversal',
      get('/v1/..%5C..%5Cetc%5Cpasswd'),
      404,
      'not_found',
      /no route GET/,
    ),
    c(
      'path',
      'traversal below a route',
      get('/v1/predict/../../../etc/passwd'),
      404,
      'not_found',
      /no route/,
    ),
    c('path', 'a NUL byte in the URL', get('/v1/model%00.json'), 404, 'not_found', /no route GET/),
    c('path', 'an absolute path as the URL', get('//etc/passwd'), 404, 'not_found', /no route GET/),
    c('path', 'unknown route', get('/v2/predict'), 404, 'not_found', /no route GET \/v2\/predict/),
    c('path', 'wrong method', get('/v1/predict'), 404, 'not_found', /no route GET \/v1\/predict/),
    c(
      'path',
      'PUT',
      { ...json(valid), method: 'PUT' },
      404,
      'not_found',
      /no route PUT \/v1\/predict/,
    ),
    c(
      'path',
      'a space in the path',
      { wire: 'GET /v1/mo del HTTP/1.1\r\nHost: x\r\n\r\n' },
      400,
      'bad_http',
      /not valid HTTP: Expected HTTP\//,
    ),
    c(
      'type',
      'JSON in UTF-16',
      raw(Buffer.from(valid, 'utf16le'), 'application/json; charset=utf-16le'),
      415,
      'unsupported_media_type',
      /charset 'utf-16le' is not accepted; send UTF-8/,
    ),
    // Bytes no HTTP client sends: the HTTP parser refuses them before (or while) a route runs.
    c(
      'http',
      'not HTTP at all',
      { wire: 'HELLO THERE\r\n\r\n' },
      400,
      'bad_http',
      /not valid HTTP: .*\(HPE_/,
    ),
    c(
      'http',
      'no Host header',
      { wire: `GET /v1/model HTTP/1.1\r\n${WIRE_AUTH}\r\n` },
      400,
      'bad_http',
      /needs a Host header/,
    ),
    c(
      'http',
      'headers over 16 kB',
      { wire: `GET /v1/model HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(20_000)}\r\n\r\n` },
      431,
      'headers_too_large',
      /request headers are larger than 16384 bytes/,
    ),
    c(
      'http',
      'a Content-Length that is not a number',
      { wire: `POST /v1/predict HTTP/1.1\r\n${WIRE_HEAD}Content-Length: abc\r\n\r\n{}` },
      400,
      'bad_http',
      /Invalid character in Content-Length/,
    ),
    c(
      'http',
      'Content-Length and chunked (smuggling)',
      {
        wire: `POST /v1/predict HTTP/1.1\r\n${WIRE_HEAD}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      },
      400,
      'bad_http',
      /Transfer-Encoding can't be present with Content-Length/,
    ),
    c(
      'http',
      'a bad chunk size',
      {
        wire: `POST /v1/predict HTTP/1.1\r\n${WIRE_HEAD}Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`,
      },
      400,
      'bad_http',
      /Invalid character in chunk size/,
    ),
    c(
      'http',
      'body shorter than its Content-Length',
      {
        wire: `POST /v1/predict HTTP/1.1\r\n${WIRE_HEAD}Content-Length: 5000\r\n\r\n{"inputs": [[0, 0`,
      },
      400,
      'bad_http',
      /connection ended before the request was complete/,
    ),
  ];
}
