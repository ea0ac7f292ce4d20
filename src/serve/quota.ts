/**
 * Per-key query limits: a token bucket (`rate` examples per second, at most `burst` saved up)
 * and a daily quota (`perDay` examples per UTC day). A request of `cost` examples passes only if
 * both allow it, and then is charged to both; a refusal charges nothing and says when to retry.
 *
 * `QuotaStore` is the seam for shared state: the memory store here serves one process; a store
 * on Redis (several instances enforcing one quota) implements the same two methods.
 */
import { check } from '../errors.js';
import type { QuotaConfig } from './guard-config.js';

export type QuotaDecision =
  | { readonly allowed: true; readonly remainingToday: number }
  | {
      readonly allowed: false;
      /** 'rate': the bucket holds too few tokens; 'daily': the day's quota is used up. */
      readonly reason: 'rate' | 'daily';
      /** Whole seconds until the same request would pass (the Retry-After header). */
      readonly retryAfterSeconds: number;
    };

export interface QuotaStore {
  /** Charges `cost` examples to `keyId` at time `nowMs` (ms since the epoch) if both limits allow. */
  take(keyId: string, cost: number, nowMs: number): Promise<QuotaDecision>;
  /** Releases connections or timers (nothing for the memory store). */
  close(): Promise<void>;
}

const DAY_MS = 86_400_000;

interface KeyState {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  updatedMs: number;
  /** UTC day number (ms / DAY_MS, floored) of `usedToday`. */
  day: number;
  usedToday: number;
}

/** Seconds from `nowMs` to the next UTC midnight, rounded up (at least 1). */
export function secondsToNextUtcDay(nowMs: number): number {
  const next = (Math.floor(nowMs / DAY_MS) + 1) * DAY_MS;
  return Math.max(1, Math.ceil((next - nowMs) / 1000));
}

/** The in-memory store: one process, state lost on restart. */
export class MemoryQuotaStore implements QuotaStore {
  private readonly keys = new Map<string, KeyState>();

  constructor(
    private readonly config: QuotaConfig,
    /** Keys tracked before idle ones (full bucket, nothing used today) are dropped. */
    private readonly maxKeys = 100_000,
  ) {}

  async take(keyId: string, cost: number, nowMs: number): Promise<QuotaDecision> {
    const { rate, burst, perDay } = this.config;
    check(
      Number.isInteger(cost) && cost >= 1 && cost <= burst,
      () => `quota: cost must be an integer in [1, burst = ${burst}], got ${cost}`,
    );
    const day = Math.floor(nowMs / DAY_MS);
    const s = this.state(keyId, nowMs, day);
    // Refill for the time since the last update (never backwards if the clock steps back).
    s.tokens = Math.min(burst, s.tokens + (rate * Math.max(0, nowMs - s.updatedMs)) / 1000);
    s.updatedMs = Math.max(s.updatedMs, nowMs);
    if (s.day !== day) {
      s.day = day;
      s.usedToday = 0;
    }
    if (s.usedToday + cost > perDay) {
      return { allowed: false, reason: 'daily', retryAfterSeconds: secondsToNextUtcDay(nowMs) };
    }
    if (s.tokens < cost) {
      const wait = (cost - s.tokens) / rate;
      return { allowed: false, reason: 'rate', retryAfterSeconds: Math.max(1, Math.ceil(wait)) };
    }
    s.tokens -= cost;
    s.usedToday += cost;
    return { allowed: true, remainingToday: perDay - s.usedToday };
  }

  async close(): Promise<void> {
    this.keys.clear();
  }

  private state(keyId: string, nowMs: number, day: number): KeyState {
    let s = this.keys.get(keyId);
    if (s === undefined) {
      if (this.keys.size >= this.maxKeys) this.sweep(nowMs, day);
      s = { tokens: this.config.burst, updatedMs: nowMs, day, usedToday: 0 };
      this.keys.set(keyId, s);
    }
    return s;
  }

  /** Forgets keys that would start afresh anyway: bucket refilled and nothing used today. */
  private sweep(nowMs: number, day: number): void {
    const { rate, burst } = this.config;
    for (const [id, s] of this.keys) {
      const full = s.tokens + (rate * (nowMs - s.updatedMs)) / 1000 >= burst;
      if (full && (s.day !== day || s.usedToday === 0)) this.keys.delete(id);
    }
  }

  /** Keys currently tracked (for tests and metrics). */
  get size(): number {
    return this.keys.size;
  }
}
