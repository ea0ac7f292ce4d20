/**
 * `parry serve`'s HTTP service (fastify): a classifier behind the guards of a guard file.
 *
 *   POST /v1/predict    JSON { inputs: [...] }, or one PNG / JPEG image → predictions
 *   GET  /v1/model      input shape, classes, bounds, guards in force (no keys, no seeds)
 *   GET  /healthz       the process answers        GET /readyz   the model is loaded and warm
 *   GET  /metrics       Prometheus text            GET /openapi.json   this API's document
 *   GET  /              the browser page (page-route.ts)
 *
 * A predict request passes, in order: the per-address rate limit (@fastify/rate-limit), the API
 * key, the body limits and schema, the input check (shape, NaN/Inf, bounds), the key's token
 * bucket and daily quota, the extraction monitor's admission (a blocked or throttled key stops
 * here), the micro-batcher and the guarded model, then the extraction monitor's verdict on the
 * queries with their predicted classes (predict-route.ts). Every refusal is a 4xx
 * `{ error: { code, message } }`, the HTTP parser's included (request-log.ts). Every /v1 request
 * (and every unknown path, and every connection refused before it reached a route) leaves one
 * line in the audit log.
 *
 * The caller owns the model: close the service (`app.close()`: stops accepting, answers what is
 * in flight, then releases batcher, quota store and log) before disposing it.
 */
import rateLimit from '@fastify/rate-limit';
import { type FastifyInstance, fastify } from 'fastify';
import { ApiKeyGuard } from './api-keys.js';
import { AuditLog } from './audit-log.js';
import { MicroBatcher } from './batcher.js';
import {
  createExtractionMonitor,
  type ExtractionMonitor,
  ExtractionPolicy,
} from './extraction-monitor.js';
import type { GuardConfig } from './guard-config.js';
import { createGuardedPredictor, type RowAnswer } from './guarded-predictor.js';
import {
  checkJsonCharset,
  errorBody,
  HttpError,
  parseJsonBody,
  toHttpError,
} from './http-error.js';
import { registerInfoRoutes } from './info-routes.js';
import type { RouteDoc } from './openapi.js';
import { pageBundlePath } from './page-bundle.js';
import { registerPageRoute } from './page-route.js';
import { registerPredictRoute } from './predict-route.js';
import { MemoryQuotaStore, type QuotaStore } from './quota.js';
import { requestLedger } from './request-log.js';
import { requestTracking, type ServedModel, type ServiceContext } from './service-context.js';
import { createServiceMetrics } from './service-metrics.js';

export type { ServedModel } from './service-context.js';

export interface ServiceOptions {
  model: ServedModel;
  guard: GuardConfig;
  /** Shown by GET /v1/model (a name, not a path). */
  modelName?: string;
  /** Seeds the randomised guards when the guard file sets no `seed`; default 0. */
  seed?: number;
  /** Shared quota state (default: in this process's memory). */
  quotaStore?: QuotaStore;
  /**
   * The extraction monitor when guards.extractionMonitor is set (default: the method it names);
   * its action on alarm is the guard file's.
   */
  monitor?: ExtractionMonitor;
  /** Serve the browser page at `/` (default true). */
  page?: boolean;
  /** The page's built script (default: dist/page/app.js, see page-bundle.ts). */
  pageBundle?: string;
  /** Wall clock in ms since the epoch (quotas, audit times); default Date.now. */
  now?: () => number;
  /** Told about every 5xx (the response itself says only 'internal error'). */
  onInternalError?: (e: unknown) => void;
}

/** What a route adds to its OpenAPI entry (in its `config.doc`). */
export interface RouteNote {
  summary: string;
  secured?: boolean;
  /** Request bodies fastify does not validate (images). */
  content?: Record<string, { schema: unknown }>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's OpenAPI note (routes without one stay out of the document). */
    doc?: RouteNote;
  }
}

/** The service, routes registered and model warmed up; call `listen` or `inject` on it. */
export async function createService(o: ServiceOptions): Promise<FastifyInstance> {
  const { model, guard } = o;
  const { guards } = guard;
  const predictor = await createGuardedPredictor(model, guards, guard.seed ?? o.seed ?? 0);
  const keys = new ApiKeyGuard(guards.apiKeys);
  const metrics = createServiceMetrics();
  const rowSize = model.inputShape.reduce((a, b) => a * b, 1);
  const ctx: ServiceContext = {
    model,
    modelName: o.modelName,
    guard,
    predictor,
    keys,
    quota: o.quotaStore ?? new MemoryQuotaStore(guards.quota),
    extraction: guards.extractionMonitor
      ? new ExtractionPolicy(
          o.monitor ?? createExtractionMonitor(guards.extractionMonitor, rowSize),
          guards.extractionMonitor,
        )
      : undefined,
    metrics,
    batcher: new MicroBatcher<RowAnswer>(
      (x, rows) => predictor.predictRows(x, rows),
      rowSize,
      guard.batching,
      (rows) => metrics.batchRows.observe(rows),
    ),
    now: o.now ?? Date.now,
    ...requestTracking(keys),
  };
  const audit = guard.audit.path ? new AuditLog(guard.audit.path, guard.audit) : undefined;
  let ready = false;
  let closing = false;
  const ledger = requestLedger(ctx, audit);

  const app = fastify({
    logger: false,
    bodyLimit: guards.input.maxBodyBytes,
    // Refuse what the schema does not allow instead of quietly dropping or coercing it.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
    return503OnClosing: true,
    clientErrorHandler: ledger.connectionError,
    // A missing Host header is refused below in the service's error form, not by Node with an
    // empty 400.
    http: { requireHostHeader: false },
  });
  const routes: RouteDoc[] = [];
  app.addHook('onRoute', (r) => {
    if (r.config?.doc !== undefined)
      routes.push(...routeDocs(r.method, r.url, r.config.doc, r.schema));
  });
  // Before the rate limit's hook: a request is counted in flight the moment it is routed, so
  // that a connection error right after (a bad chunk in the same packet) finds it.
  app.addHook('onRequest', async (req, reply) => {
    ledger.begin(req, reply);
    if (req.raw.httpVersion === '1.1' && req.headers.host === undefined) {
      throw new HttpError(400, 'bad_http', 'an HTTP/1.1 request needs a Host header');
    }
  });
  app.addHook('onResponse', async (req, reply) => ledger.answered(req, reply));
  await app.register(rateLimit, {
    global: true,
    max: guards.perAddress.max,
    timeWindow: guards.perAddress.windowMs,
    errorResponseBuilder: (_req, c) =>
      new HttpError(
        429,
        'rate_limited',
        `more than ${c.max} requests from this address in ${c.after}; slow down`,
      ),
  });
  app.setErrorHandler((e, req, reply) => {
    const h = toHttpError(e, guards.input, req.headers['content-type']);
    // A request whose connection is gone fails wherever it was (reading the body, the client
    // address): that is the client's doing, not an internal error, and there is no one to tell.
    if (h.statusCode >= 500 && req.raw.socket?.destroyed !== true) o.onInternalError?.(e);
    const s = ctx.state(req);
    s.errorCode = h.code;
    // Body refusals from the parser or the schema come before the handler's own input check.
    if (s.keyId !== undefined && [400, 413, 415].includes(h.statusCode))
      s.verdicts.input ??= h.code;
    reply.code(h.statusCode).headers(h.headers).send(errorBody(h.code, h.message));
  });
  app.setNotFoundHandler((req, reply) => {
    const where = req.url.length > 200 ? `${req.url.slice(0, 200)}...` : req.url;
    ctx.state(req).errorCode = 'not_found';
    reply.code(404).send(errorBody('not_found', `no route ${req.method} ${where}`));
  });
  // Only JSON and images: fastify's own JSON parser hides the reason a body is refused, and its
  // text/plain parser would hand the route a string.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    try {
      checkJsonCharset(req.headers['content-type']);
      done(null, parseJsonBody(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.addContentTypeParser(['image/png', 'image/jpeg'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );
  registerPredictRoute(app, ctx);
  registerInfoRoutes(app, ctx, { ready: () => ready, closing: () => closing }, routes);
  if (o.page !== false) registerPageRoute(app, o.pageBundle ?? pageBundlePath());

  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onClose', async () => {
    await ctx.batcher.close();
    await ledger.drained();
    ctx.predictor.dispose();
    await ctx.quota.close();
    ctx.extraction?.dispose();
    audit?.close();
  });
  await app.ready();
  // One forward pass before reporting ready: the first call compiles kernels and allocates.
  await predictor.predictRows(new Float32Array(rowSize).fill(model.bounds[0]), 1);
  ready = true;
  return app;
}

/** A route's OpenAPI entries (one per method, HEAD left out) from its schema and note. */
function routeDocs(
  method: string | string[],
  url: string,
  note: RouteNote,
  schema: unknown,
): RouteDoc[] {
  const s = schema as
    | {
        body?: { content?: Record<string, { schema: unknown }> };
        response?: Record<string, unknown>;
      }
    | undefined;
  const content = { ...(s?.body?.content ?? {}), ...(note.content ?? {}) };
  return (Array.isArray(method) ? method : [method])
    .filter((m) => m !== 'HEAD')
    .map((m) => ({
      method: m,
      url,
      summary: note.summary,
      secured: note.secured,
      ...(Object.keys(content).length > 0 ? { body: { content } } : {}),
      ...(s?.response ? { response: s.response } : {}),
    }));
}
