/**
 * The per-key extraction monitor's seam. A monitor sees every accepted query of a key (after
 * authentication, input checks and quota, before the model answers) and says whether the key's
 * stream of queries looks like a model-extraction attack; the service then acts as
 * `guards.extractionMonitor.onAlarm` says: 'flag' (answer, record the alarm), 'throttle' (429
 * with Retry-After) or 'block' (403).
 *
 * PRADA (Juuti et al. 2019) is the method the config names: per key, the minimum L2 distance of
 * each new query to the key's earlier queries of the same predicted class, and an alarm when the
 * Shapiro–Wilk statistic W of those distances drops below `delta` (benign streams give roughly
 * normal distances; synthetic extraction queries do not).
 */
import { ParryError } from '../errors.js';
import type { ExtractionMonitorConfig } from './guard-config.js';

export interface MonitorVerdict {
  readonly alarm: boolean;
  /** The test statistic behind the verdict (PRADA: W), when one was computed. */
  readonly statistic?: number;
}

export interface ExtractionMonitor {
  /**
   * Records the `rows` queries in `x` (`[rows, ...inputShape]` values) of key `keyId` and judges
   * the key's stream so far.
   */
  observe(keyId: string, x: Float32Array, rows: number): MonitorVerdict | Promise<MonitorVerdict>;
  /** Frees per-key state. */
  dispose?(): void;
}

/** The monitor a guard file asks for. */
export function createExtractionMonitor(c: ExtractionMonitorConfig): ExtractionMonitor {
  throw new ParryError(
    'UNSUPPORTED',
    `guards.extractionMonitor: method '${c.method}' is not implemented yet in parry serve; remove the section`,
  );
}
