/**
 * The quota store on Redis (`parry serve --redis URL`): the per-key token bucket and daily quota
 * of quota.ts, kept in one Redis hash per key and updated by one Lua script, so a check and its
 * charge are atomic and every service instance on the same Redis enforces one quota.
 *
 * The arithmetic is the memory store's, step for step (refill for the time since the last update,
 * never backwards; a new UTC day resets the day's count; refuse on the daily quota first, then
 * on the bucket; charge both or nothing), in Redis's double-precision Lua numbers. Times are the
 * caller's clock (ms since the epoch), as for the memory store, so instances should keep their
 * clocks in step (NTP). A key's hash expires once it would start afresh anyway (bucket full and
 * the day over), so idle keys cost nothing.
 *
 * When Redis cannot be reached the store refuses (503 `quota_unavailable`): a guard that cannot
 * count does not let requests through uncounted.
 */

import { Redis } from 'ioredis';
import { checkRedisUrl, redactUrl } from '../engine/queue/redis.js';
import { check, ParryError } from '../errors.js';
import type { QuotaConfig } from './guard-config.js';
import { HttpError } from './http-error.js';
import type { QuotaDecision, QuotaStore } from './quota.js';

/**
 * KEYS[1]: the key's hash. ARGV: rate, burst, perDay, cost, now (ms). Returns {1, remainingToday}
 * or {0, 'daily' | 'rate', retryAfterSeconds}.
 */
const TAKE = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local perDay = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local dayMs = 86400000
local day = math.floor(now / dayMs)
local s = redis.call('HMGET', KEYS[1], 'tokens', 'updated', 'day', 'used')
local tokens = tonumber(s[1]) or burst
local updated = tonumber(s[2]) or now
local sday = tonumber(s[3]) or day
local used = tonumber(s[4]) or 0
tokens = math.min(burst, tokens + rate * math.max(0, now - updated) / 1000)
updated = math.max(updated, now)
if sday ~= day then
  sday = day
  used = 0
end
local result
if used + cost > perDay then
  result = {0, 'daily', math.max(1, math.ceil(((day + 1) * dayMs - now) / 1000))}
elseif tokens < cost then
  result = {0, 'rate', math.max(1, math.ceil((cost - tokens) / rate))}
else
  tokens = tokens - cost
  used = used + cost
  result = {1, perDay - used}
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'updated', string.format('%.17g', updated), 'day', sday, 'used', used)
local full = math.ceil((burst - tokens) / rate * 1000)
local dayLeft = (day + 1) * dayMs - now
redis.call('PEXPIRE', KEYS[1], math.max(full, dayLeft) + 1000)
return result
`;

type TakeReply = [number, number] | [number, 'daily' | 'rate', number];

interface QuotaRedis extends Redis {
  parryQuotaTake(key: string, ...args: (string | number)[]): Promise<TakeReply>;
}

export interface RedisQuotaOptions {
  /** Prefix of the keys' hashes: services that should share quotas use the same one. */
  prefix?: string;
  /** How long `connect` waits for Redis to answer. */
  connectTimeoutMs?: number;
}

export const DEFAULT_QUOTA_PREFIX = 'parry:quota:';

export { checkRedisUrl, redactUrl };

export class RedisQuotaStore implements QuotaStore {
  private constructor(
    private readonly redis: QuotaRedis,
    private readonly config: QuotaConfig,
    private readonly prefix: string,
    private readonly url: string,
  ) {}

  /** Connects to `url` (rejects naming it when Redis does not answer in time). */
  static async connect(
    url: string,
    config: QuotaConfig,
    o: RedisQuotaOptions = {},
  ): Promise<RedisQuotaStore> {
    checkRedisUrl(url);
    const redis = new Redis(url, {
      lazyConnect: true,
      // Fail a command at once while disconnected instead of queueing it: the request gets 503.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectionName: 'parry-serve-quota',
      retryStrategy: (times) => Math.min(100 * times, 2000),
    }) as QuotaRedis;
    // Connection errors surface as refused commands; without a listener ioredis prints each one.
    redis.on('error', () => {});
    redis.defineCommand('parryQuotaTake', { numberOfKeys: 1, lua: TAKE });
    const timeoutMs = o.connectTimeoutMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        redis.connect().then(() => redis.ping()),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e) {
      redis.disconnect();
      throw new ParryError(
        'BAD_OPTION',
        `--redis: cannot reach Redis at ${redactUrl(url)}: ${(e as Error).message}`,
      );
    } finally {
      clearTimeout(timer);
    }
    return new RedisQuotaStore(redis, config, o.prefix ?? DEFAULT_QUOTA_PREFIX, url);
  }

  async take(keyId: string, cost: number, nowMs: number): Promise<QuotaDecision> {
    const { rate, burst, perDay } = this.config;
    check(
      Number.isInteger(cost) && cost >= 1 && cost <= burst,
      () => `quota: cost must be an integer in [1, burst = ${burst}], got ${cost}`,
    );
    let reply: TakeReply;
    try {
      reply = await this.redis.parryQuotaTake(
        this.prefix + keyId,
        rate,
        burst,
        perDay,
        cost,
        Math.floor(nowMs),
      );
    } catch (e) {
      throw new HttpError(
        503,
        'quota_unavailable',
        `the quota store (Redis at ${redactUrl(this.url)}) cannot be reached: ${(e as Error).message}`,
        { 'retry-after': '1' },
      );
    }
    if (reply[0] === 1) return { allowed: true, remainingToday: Number(reply[1]) };
    const [, reason, retry] = reply as [number, 'daily' | 'rate', number];
    return { allowed: false, reason, retryAfterSeconds: Number(retry) };
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
