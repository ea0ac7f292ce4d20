/**
 * The routes that describe the service rather than use the model: GET /v1/model (behind the API
 * key), and the probes and documents that are neither authenticated nor rate limited
 * (/healthz, /readyz, /metrics, /openapi.json).
 */
import type { FastifyInstance } from 'fastify';
import { HttpError } from './http-error.js';
import { openApiDocument, type RouteDoc } from './openapi.js';
import { modelSchema, PLAIN_ROUTES, summarizeGuards } from './routes.js';
import type { ServiceContext } from './service-context.js';

export interface Lifecycle {
  /** Model loaded and warmed up. */
  ready(): boolean;
  /** Shutting down: no new work. */
  closing(): boolean;
}

export function registerInfoRoutes(
  app: FastifyInstance,
  ctx: ServiceContext,
  life: Lifecycle,
  routes: readonly RouteDoc[],
): void {
  const { model } = ctx;
  const guards = summarizeGuards(ctx.guard, ctx.keys.required, ctx.predictor.applied);
  const image = model.inputShape.length === 3 && [1, 3].includes(model.inputShape[2]);
  const description = {
    ...(ctx.modelName ? { name: ctx.modelName } : {}),
    inputShape: [...model.inputShape],
    numClasses: model.numClasses,
    ...(model.classNames ? { classNames: [...model.classNames] } : {}),
    bounds: [...model.bounds],
    accepts: image ? ['application/json', 'image/png', 'image/jpeg'] : ['application/json'],
    guards,
  };
  app.get(
    '/v1/model',
    {
      schema: modelSchema,
      config: { doc: { summary: 'The model and the guards in force', secured: true } },
      preParsing: ctx.authenticate,
    },
    async () => description,
  );

  const plain = (summary: string) => ({ rateLimit: false, doc: { summary } });
  app.get('/healthz', { schema: PLAIN_ROUTES.healthz, config: plain('Liveness') }, async () => ({
    status: 'ok',
  }));
  app.get(
    '/readyz',
    {
      schema: PLAIN_ROUTES.readyz,
      config: plain('Readiness: model loaded and warm, not shutting down'),
    },
    async () => {
      if (life.closing()) throw new HttpError(503, 'shutting_down', 'the service is shutting down');
      if (!life.ready()) throw new HttpError(503, 'not_ready', 'the model is not ready yet');
      return { status: 'ready' };
    },
  );
  app.get('/metrics', { config: plain('Prometheus metrics (text)') }, async (_req, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  let document: Record<string, unknown> | undefined;
  app.get('/openapi.json', { config: plain('This document (OpenAPI 3.1)') }, async () => {
    document ??= openApiDocument(
      { title: 'parry serve', version: '1', description: 'A classifier behind parry guards' },
      routes,
      ctx.keys.required,
    );
    return document;
  });
}
