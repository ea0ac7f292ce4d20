/**
 * The service's Prometheus metrics (prom-client), in a registry of its own so that several
 * services in one process do not share counters. Labels stay bounded: routes are route templates
 * (an unknown path counts as 'unmatched'), keys are the configured key ids ('anonymous' for an
 * open service), reasons are error codes.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { RowAnswer } from './guarded-predictor.js';

export interface ServiceMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly latency: Histogram<'route'>;
  readonly rejections: Counter<'reason'>;
  readonly queries: Counter<'key'>;
  readonly batchRows: Histogram;
  readonly abstentions: Counter;
  readonly extractionAlarms: Counter<'key'>;
}

export function createServiceMetrics(): ServiceMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'parry_' });
  const registers = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'parry_http_requests_total',
      help: 'HTTP requests by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      registers,
    }),
    latency: new Histogram({
      name: 'parry_http_request_duration_seconds',
      help: 'Time from request to response, by route template',
      labelNames: ['route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    rejections: new Counter({
      name: 'parry_rejections_total',
      help: 'Requests refused with a 4xx, by error code',
      labelNames: ['reason'],
      registers,
    }),
    queries: new Counter({
      name: 'parry_queries_total',
      help: 'Examples answered, by API key id',
      labelNames: ['key'],
      registers,
    }),
    batchRows: new Histogram({
      name: 'parry_batch_rows',
      help: 'Examples per forward pass (micro-batching)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    }),
    abstentions: new Counter({
      name: 'parry_smoothing_abstentions_total',
      help: 'Examples on which randomized smoothing abstained',
      registers,
    }),
    extractionAlarms: new Counter({
      name: 'parry_extraction_alarms_total',
      help: 'Requests on which the extraction monitor raised an alarm, by API key id',
      labelNames: ['key'],
      registers,
    }),
  };
}

/** The detector guard's metrics (registered only when guards.detector is set). */
export interface DetectorMetrics {
  readonly scores: Histogram<'detector'>;
  readonly flagged: Counter<'detector' | 'action'>;
}

/**
 * Registers the detector guard's metrics in `registry`. Scores live on the detector's own scale,
 * so the buckets are the saved detector's: its clean calibration-score quantiles and threshold
 * (a drift of the served inputs away from the clean data shows as mass moving up the buckets).
 */
export function createDetectorMetrics(
  registry: Registry,
  buckets: readonly number[],
): DetectorMetrics {
  const registers = [registry];
  return {
    scores: new Histogram({
      name: 'parry_detector_score',
      help: 'Detector guard scores of the examples answered; buckets at the clean calibration-score quantiles and the threshold',
      labelNames: ['detector'],
      buckets: [...buckets],
      registers,
    }),
    flagged: new Counter({
      name: 'parry_detector_flagged_total',
      help: 'Examples the detector guard flagged (withheld under action abstain), by detector and action',
      labelNames: ['detector', 'action'],
      registers,
    }),
  };
}

/** Counts the detector scores and flags of one request's answers. */
export function observeDetector(
  m: DetectorMetrics,
  d: { name: string; action: string },
  answers: readonly RowAnswer[],
): void {
  let flagged = 0;
  for (const a of answers) {
    if (a.detectorScore !== undefined) m.scores.observe({ detector: d.name }, a.detectorScore);
    if (a.flagged) flagged++;
  }
  if (flagged > 0) m.flagged.inc({ detector: d.name, action: d.action }, flagged);
}
