/**
 * What the routes of one service share: the model and its guards, the per-request record that
 * the audit log and the metrics read when the response leaves, and the guard-step helper that
 * writes each guard's verdict into it.
 */
import type { FastifyRequest } from 'fastify';
import type { Classifier } from '../models/classifier.js';
import type { ApiKeyGuard } from './api-keys.js';
import type { MicroBatcher } from './batcher.js';
import type { ExtractionPolicy } from './extraction-monitor.js';
import type { GuardConfig } from './guard-config.js';
import type { GuardedPredictor, RowAnswer } from './guarded-predictor.js';
import { HttpError } from './http-error.js';
import type { QuotaStore } from './quota.js';
import type { ServiceMetrics } from './service-metrics.js';

/** A classifier as the service shows it; `classNames` name the labels when given. */
export interface ServedModel extends Classifier {
  readonly classNames?: readonly string[];
}

/** What one request did, for its audit line and metrics. */
export interface RequestState {
  /** performance.now() at arrival. */
  started: number;
  keyId?: string;
  errorCode?: string;
  inputSha256?: string;
  inputs?: number[];
  rows?: number;
  predictions?: (number | null)[];
  /** Each guard's verdict: 'pass', 'applied', 'alarm', or the error code that stopped it. */
  verdicts: Record<string, string>;
  /**
   * What the service answered on the connection when the HTTP parser refused the rest of this
   * request (a bad chunk, a body cut short): the route never answers such a request.
   */
  connectionError?: HttpError;
  /** Its audit line and metrics are written (once, whichever of response or close comes first). */
  settled?: boolean;
}

export interface ServiceContext {
  readonly model: ServedModel;
  readonly modelName?: string;
  readonly guard: GuardConfig;
  readonly predictor: GuardedPredictor;
  readonly keys: ApiKeyGuard;
  readonly quota: QuotaStore;
  /** The extraction monitor with its action on alarm (guards.extractionMonitor). */
  readonly extraction?: ExtractionPolicy;
  readonly metrics: ServiceMetrics;
  readonly batcher: MicroBatcher<RowAnswer>;
  /** Wall clock, ms since the epoch. */
  readonly now: () => number;
  /** The request's record (created on first use). */
  state(req: FastifyRequest): RequestState;
  /** Runs one guard step, recording its verdict: 'pass', or the error code that stopped it. */
  step<T>(req: FastifyRequest, name: string, fn: () => T | Promise<T>): Promise<T>;
  /** The API-key guard as a route hook: sets the request's key id, or refuses with 401. */
  authenticate(req: FastifyRequest): Promise<void>;
}

/** `state`, `step` and `authenticate` over a per-request table that forgets finished requests. */
export function requestTracking(
  keys: ApiKeyGuard,
): Pick<ServiceContext, 'state' | 'step' | 'authenticate'> {
  const states = new WeakMap<FastifyRequest, RequestState>();
  const state = (req: FastifyRequest) => {
    let s = states.get(req);
    if (s === undefined) {
      s = { started: performance.now(), verdicts: {} };
      states.set(req, s);
    }
    return s;
  };
  const step = async <T>(req: FastifyRequest, name: string, fn: () => T | Promise<T>) => {
    try {
      const out = await fn();
      state(req).verdicts[name] = 'pass';
      return out;
    } catch (e) {
      state(req).verdicts[name] = e instanceof HttpError ? e.code : 'error';
      throw e;
    }
  };
  const authenticate = async (req: FastifyRequest) => {
    await step(req, 'auth', () => {
      state(req).keyId = keys.authenticate(req.headers);
    });
  };
  return { state, step, authenticate };
}
