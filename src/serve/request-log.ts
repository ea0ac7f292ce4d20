/**
 * What every request leaves behind: its metrics, and one audit line for /v1 routes and unknown
 * paths. A request is recorded once it is answered, or once its connection closes without an
 * answer (a client that went away, a body the HTTP parser refused); a connection whose request
 * never reached a route (not HTTP, headers too large) leaves one line of route 'unparsed'.
 * Nothing of the request's content goes into the line: no URL, no body, no key (only its id).
 */
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from './audit-log.js';
import { connectionErrorResponse, type HttpError, rawErrorResponse } from './http-error.js';
import type { ServiceContext } from './service-context.js';

/** Counts the requests in flight and records each once: answered, or its connection closed. */
export interface RequestLedger {
  /** onRequest: the request is routed and in flight. */
  begin(req: FastifyRequest, reply: FastifyReply): void;
  /** onResponse: the route's answer went out. */
  answered(req: FastifyRequest, reply: FastifyReply): void;
  /** fastify's clientErrorHandler: the HTTP parser refused the connection's bytes. */
  connectionError(e: Error & { code?: string; reason?: string }, socket: Socket): void;
  /** Resolves once no request is in flight. */
  drained(): Promise<void>;
}

export function requestLedger(ctx: ServiceContext, audit: AuditLog | undefined): RequestLedger {
  let inFlight = 0;
  let onDrained: (() => void) | undefined;
  /** The request in flight on each connection (for the HTTP parser's refusals). */
  const current = new WeakMap<Socket, { req: FastifyRequest; reply: FastifyReply }>();
  const settle = (req: FastifyRequest, reply: FastifyReply, answered: boolean) => {
    const s = ctx.state(req);
    if (s.settled) return;
    s.settled = true;
    if (current.get(req.raw.socket)?.req === req) current.delete(req.raw.socket);
    recordResponse(ctx, audit, req, reply, answered);
    if (--inFlight === 0) onDrained?.();
  };
  return {
    begin(req, reply) {
      ctx.state(req);
      inFlight++;
      current.set(req.raw.socket, { req, reply });
      // 'close' comes after 'finish' (onResponse) for an answered request, alone otherwise.
      reply.raw.once('close', () => settle(req, reply, reply.raw.writableFinished));
    },
    answered: (req, reply) => settle(req, reply, true),
    /**
     * Not HTTP, headers too large, a bad Content-Length or chunk, a body cut short: answered
     * (when nothing is sent yet) in the service's error form, then the connection is closed. A
     * request already routed on it is recorded when the connection closes; otherwise the
     * connection gets a line of its own.
     */
    connectionError(e, socket) {
      const h = connectionErrorResponse(e);
      const routed = current.get(socket);
      if (routed) {
        const s = ctx.state(routed.req);
        s.connectionError = h;
        // Its body could not be read: the input check's verdict, as for a body fastify refuses.
        if (h && s.keyId !== undefined) s.verdicts.input ??= h.code;
      } else if (h) recordUnparsed(ctx, audit, socket, h);
      if (h && socket.writable && !routed?.reply.raw.headersSent) {
        socket.end(rawErrorResponse(h), () => socket.destroy());
      } else socket.destroy();
    },
    drained: () =>
      inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => (onDrained = resolve)),
  };
}

/** Routes whose requests stay out of the audit log (probes, scrapes, the page). */
const UNAUDITED = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json', '/']);

/**
 * Metrics and the audit line of a request that reached the router. `answered`: the route's
 * response went out; else the connection closed first, and the status is that of the
 * connection's refusal (a bad chunk, a body cut short) or null (the client went away).
 */
export function recordResponse(
  ctx: ServiceContext,
  audit: AuditLog | undefined,
  req: FastifyRequest,
  reply: FastifyReply,
  answered: boolean,
): void {
  const s = ctx.state(req);
  const route = req.routeOptions.url ?? 'unmatched';
  const seconds = (performance.now() - s.started) / 1000;
  const status = answered ? reply.statusCode : (s.connectionError?.statusCode ?? null);
  if (!answered) s.errorCode = s.connectionError?.code ?? 'aborted';
  ctx.metrics.requests.inc({ route, method: req.method, status: String(status ?? 'aborted') });
  ctx.metrics.latency.observe({ route }, seconds);
  if (status !== null && status >= 400 && status < 500) {
    ctx.metrics.rejections.inc({ reason: s.errorCode ?? String(status) });
  }
  if (audit === undefined || UNAUDITED.has(route)) return;
  audit.write({
    time: new Date(ctx.now()).toISOString(),
    id: req.id,
    ip: req.ip ?? null,
    method: req.method,
    route,
    key: s.keyId ?? null,
    status,
    latencyMs: Math.round(seconds * 1e6) / 1e3,
    rows: s.rows ?? null,
    inputSha256: s.inputSha256 ?? null,
    predictions: s.predictions ?? null,
    guards: s.verdicts,
    ...(s.errorCode ? { error: s.errorCode } : {}),
    ...(s.inputs ? { inputs: s.inputs } : {}),
  });
}

/** Metrics and the audit line of a connection refused before any request reached the router. */
export function recordUnparsed(
  ctx: ServiceContext,
  audit: AuditLog | undefined,
  socket: Socket,
  h: HttpError,
): void {
  ctx.metrics.requests.inc({ route: 'unparsed', method: 'unknown', status: String(h.statusCode) });
  ctx.metrics.rejections.inc({ reason: h.code });
  audit?.write({
    time: new Date(ctx.now()).toISOString(),
    id: null,
    ip: socket.remoteAddress ?? null,
    method: null,
    route: 'unparsed',
    key: null,
    status: h.statusCode,
    latencyMs: null,
    rows: null,
    inputSha256: null,
    predictions: null,
    guards: {},
    error: h.code,
  });
}
