/**
 * The per-key extraction monitor. A monitor sees every answered query of a key together with the
 * class the service predicted for it (after authentication, input checks, quota and the model,
 * before the answer leaves) and says whether the key's stream of queries looks like a
 * model-extraction attack. `ExtractionPolicy` acts on its verdicts as
 * `guards.extractionMonitor.onAlarm` says:
 * - 'flag': answer, and record the alarm (verdict 'alarm', metric, audit line);
 * - 'throttle': withhold the answer of a request that raises the alarm (429, Retry-After
 *   `throttleSeconds`) and refuse the key's requests, before the model runs, until that time has
 *   passed; the next request is answered only if the key's stream no longer alarms. The queries
 *   of withheld answers still count in the monitor, so a key is let through again once its stream
 *   looks natural;
 * - 'block': withhold the answer (403) and refuse every later request of the key, before the
 *   model runs, until the service restarts.
 *
 * PRADA (prada.ts) is the method guard.yaml names.
 */
import { ParryError } from '../errors.js';
import type { ExtractionMonitorConfig } from './guard-config.js';
import { HttpError } from './http-error.js';
import { PradaMonitor } from './prada.js';

export interface MonitorVerdict {
  readonly alarm: boolean;
  /** The test statistic behind the verdict (PRADA: W), when one was computed. */
  readonly statistic?: number;
}

export interface ExtractionMonitor {
  /**
   * Records the `rows` queries in `x` (`[rows, ...inputShape]` values) of key `keyId`, whose
   * predicted classes are `labels` (null: the service abstained), and judges the key's stream.
   */
  observe(
    keyId: string,
    x: Float32Array,
    rows: number,
    labels: readonly (number | null)[],
  ): MonitorVerdict | Promise<MonitorVerdict>;
  /** Frees per-key state. */
  dispose?(): void;
}

/** The monitor a guard file asks for, for examples of `rowSize` values. */
export function createExtractionMonitor(
  c: ExtractionMonitorConfig,
  rowSize: number,
): ExtractionMonitor {
  if (c.method === 'prada') return new PradaMonitor(rowSize, c);
  throw new ParryError('UNSUPPORTED', `guards.extractionMonitor: unknown method '${c.method}'`);
}

/** Keys remembered as blocked or throttled before the oldest is forgotten. */
const MAX_REMEMBERED = 100_000;

/** A monitor with the guard file's action on alarm. */
export class ExtractionPolicy {
  private readonly blocked = new Set<string>();
  /** Key → time (ms since the epoch) before which its requests are refused. */
  private readonly throttledUntil = new Map<string, number>();

  constructor(
    readonly monitor: ExtractionMonitor,
    private readonly c: Pick<ExtractionMonitorConfig, 'onAlarm' | 'throttleSeconds'>,
  ) {}

  /** Before the model runs: refuses a blocked key, or a throttled one inside its window. */
  admit(keyId: string, nowMs: number): void {
    if (this.blocked.has(keyId)) throw blockedError(keyId);
    const until = this.throttledUntil.get(keyId);
    if (until !== undefined && nowMs < until) {
      throw throttledError(keyId, Math.max(1, Math.ceil((until - nowMs) / 1000)));
    }
  }

  /**
   * After the model: shows the queries and their predicted classes to the monitor. Returns the
   * verdict when the answer may leave; throws the refusal (403 / 429) when it may not.
   */
  async judge(
    keyId: string,
    x: Float32Array,
    rows: number,
    labels: readonly (number | null)[],
    nowMs: number,
  ): Promise<MonitorVerdict> {
    const verdict = await this.monitor.observe(keyId, x, rows, labels);
    if (!verdict.alarm) {
      this.throttledUntil.delete(keyId);
      return verdict;
    }
    if (this.c.onAlarm === 'block') {
      remember(this.blocked, keyId);
      throw blockedError(keyId);
    }
    if (this.c.onAlarm === 'throttle') {
      this.throttledUntil.delete(keyId);
      this.throttledUntil.set(keyId, nowMs + this.c.throttleSeconds * 1000);
      if (this.throttledUntil.size > MAX_REMEMBERED) {
        this.throttledUntil.delete(this.throttledUntil.keys().next().value!);
      }
      throw throttledError(keyId, this.c.throttleSeconds);
    }
    return verdict;
  }

  dispose(): void {
    this.monitor.dispose?.();
    this.blocked.clear();
    this.throttledUntil.clear();
  }
}

function remember(set: Set<string>, key: string): void {
  set.add(key);
  if (set.size > MAX_REMEMBERED) set.delete(set.values().next().value!);
}

const suspect = (keyId: string) => `key '${keyId}': the query stream looks like model extraction`;

function blockedError(keyId: string): HttpError {
  return new HttpError(403, 'extraction_blocked', `${suspect(keyId)}; blocked`);
}

function throttledError(keyId: string, seconds: number): HttpError {
  return new HttpError(429, 'extraction_throttled', `${suspect(keyId)}; retry in ${seconds} s`, {
    'retry-after': String(seconds),
  });
}
