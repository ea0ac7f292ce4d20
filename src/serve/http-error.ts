import { maxHeaderSize, STATUS_CODES } from 'node:http';

/**
 * A refusal the service sends on purpose: HTTP status, a stable machine-readable `code`, a
 * message naming the problem, and extra headers (Retry-After). Every 4xx leaves the service as
 * `{ "error": { "code", "message" } }`.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The body of every error response. */
export function errorBody(code: string, message: string) {
  return { error: { code, message } };
}

export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' } },
    },
  },
} as const;

/** What fastify raises, with the fields the mapping reads. */
interface FrameworkError {
  code?: string;
  statusCode?: number;
  message?: string;
  /** Which part of the request failed its schema: 'body', 'querystring', ... */
  validationContext?: string;
  validation?: readonly {
    keyword: string;
    instancePath: string;
    params: Record<string, unknown>;
    message?: string;
  }[];
}

/** `/inputs/3` → `inputs[3]`: a JSON pointer as the error messages write paths. */
function readablePath(pointer: string): string {
  return pointer
    .split('/')
    .filter((p) => p !== '')
    .reduce((s, p) => (/^\d+$/.test(p) ? `${s}[${p}]` : s === '' ? p : `${s}.${p}`), '');
}

/** The first schema-validation problem as one line naming the field. */
function validationMessage(e: FrameworkError, maxBatch: number): { code: string; message: string } {
  const v = e.validation![0];
  if (e.validationContext === 'querystring') {
    // The routes take no query parameters (the schema allows none).
    return v.keyword === 'additionalProperties'
      ? {
          code: 'unknown_parameter',
          message: `query: unknown parameter '${String(v.params.additionalProperty)}'; this route takes none`,
        }
      : { code: 'bad_request', message: `query: ${v.message ?? 'invalid'}` };
  }
  const at = readablePath(v.instancePath) || 'body';
  switch (v.keyword) {
    case 'additionalProperties':
      return {
        code: 'unknown_field',
        message: `${at}: unknown field '${String(v.params.additionalProperty)}'`,
      };
    case 'required':
      return {
        code: 'missing_field',
        message: `${at}: missing field '${String(v.params.missingProperty)}'`,
      };
    case 'maxItems':
      return at === 'inputs'
        ? {
            code: 'too_many_inputs',
            message: `inputs: at most ${maxBatch} examples per request (guards.input.maxBatch)`,
          }
        : { code: 'bad_request', message: `${at}: ${v.message}` };
    default:
      return { code: 'bad_request', message: `${at}: ${v.message ?? 'invalid'}` };
  }
}

/**
 * Any error a request raised as status, code and message: an HttpError as it is, fastify's
 * parser and validation errors named after the problem, anything else a 500 whose message
 * gives nothing away.
 */
export function toHttpError(
  e: unknown,
  limits: { maxBatch: number; maxBodyBytes: number },
  contentType?: string,
): HttpError {
  if (e instanceof HttpError) return e;
  const f = (e ?? {}) as FrameworkError;
  if (f.validation && f.validation.length > 0) {
    const { code, message } = validationMessage(f, limits.maxBatch);
    return new HttpError(400, code, message);
  }
  switch (f.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(
        413,
        'body_too_large',
        `the request body is larger than ${limits.maxBodyBytes} bytes (guards.input.maxBodyBytes)`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return unsupportedMediaType(contentType);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'bad_request', 'Content-Length does not match the body');
  }
  if (typeof f.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
    return new HttpError(f.statusCode, 'bad_request', f.message ?? 'bad request');
  }
  return new HttpError(500, 'internal', 'internal error');
}

/** 415 naming the content type that was sent. */
export function unsupportedMediaType(contentType: string | undefined): HttpError {
  const sent = contentType
    ? `content type '${contentType.slice(0, 100)}'`
    : 'a body without a content type';
  return new HttpError(
    415,
    'unsupported_media_type',
    `${sent} is not accepted; send application/json, image/png or image/jpeg`,
  );
}

/**
 * The answer to an error of the connection's HTTP parser (fastify's `clientErrorHandler`: the
 * request never reached a route, or its body could not be read), naming the problem; undefined
 * when the client reset the connection and there is no one to answer.
 */
export function connectionErrorResponse(e: {
  code?: string;
  reason?: string;
  message?: string;
}): HttpError | undefined {
  switch (e.code) {
    case 'ECONNRESET':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpError(408, 'request_timeout', 'the request was not received in full in time');
    case 'HPE_HEADER_OVERFLOW':
      return new HttpError(
        431,
        'headers_too_large',
        `the request headers are larger than ${maxHeaderSize} bytes`,
      );
    case 'HPE_INVALID_EOF_STATE':
      return new HttpError(
        400,
        'bad_http',
        'the connection ended before the request was complete (its body is shorter than announced)',
      );
  }
  const reason = String(e.reason ?? e.message ?? 'parse error').slice(0, 200);
  return new HttpError(
    400,
    'bad_http',
    `the request is not valid HTTP: ${reason} (${e.code ?? 'no code'})`,
  );
}

/** A whole HTTP/1.1 response carrying `h`, for a connection no route answers; it closes. */
export function rawErrorResponse(h: HttpError): string {
  const body = JSON.stringify(errorBody(h.code, h.message));
  return (
    `HTTP/1.1 ${h.statusCode} ${STATUS_CODES[h.statusCode] ?? ''}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`
  );
}

/** 415 for a JSON body declared in a charset other than UTF-8 (it would be read as UTF-8). */
export function checkJsonCharset(contentType: string | undefined): void {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType ?? '')?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `application/json in charset '${charset.slice(0, 40)}' is not accepted; send UTF-8`,
    );
  }
}

/**
 * The JSON body parser: JSON.parse with its own error message passed on (it names the position),
 * and a top-level `__proto__` or `constructor` key refused (prototype-pollution payloads have no
 * business in a predict request; deeper objects are refused by the input check anyway).
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') {
    throw new HttpError(400, 'bad_json', 'the body is empty; send { "inputs": [...] }');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'bad_json', `the body is not valid JSON: ${(e as Error).message}`);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const key of ['__proto__', 'constructor']) {
      if (Object.hasOwn(value, key)) {
        throw new HttpError(400, 'bad_json', `the body has a '${key}' key, which is refused`);
      }
    }
  }
  return value;
}
