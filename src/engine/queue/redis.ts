/**
 * Connections to the Redis behind the job queue. BullMQ needs Redis >= 6.2 with
 * `maxmemory-policy noeviction` (an evicted job or result would be lost without a trace) and
 * ioredis connections with `maxRetriesPerRequest: null`, so that a command waits through a Redis
 * restart instead of failing: ioredis reconnects (every 0.1 s, backing off to 2 s) and replays it.
 */
import { Redis } from 'ioredis';
import { ParryError } from '../../errors.js';

/** BullMQ queue name and key prefix of parry's jobs and assets. */
export const QUEUE_NAME = 'jobs';
export const KEY_PREFIX = 'parry';

/** Checks a `redis://` / `rediss://` URL; `what` names the option in the error. */
export function checkRedisUrl(url: string, what = '--redis'): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ParryError(
      'BAD_OPTION',
      `${what}: '${url}' is not a URL (e.g. redis://127.0.0.1:6379)`,
    );
  }
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
    throw new ParryError(
      'BAD_OPTION',
      `${what}: '${url}' is not a redis://HOST:PORT or rediss://HOST:PORT URL (e.g. redis://127.0.0.1:6379)`,
    );
  }
  return parsed;
}

/** A connection as BullMQ wants it; `name` shows in `CLIENT LIST`. */
export function connectRedis(url: string, name: string): Redis {
  checkRedisUrl(url);
  const redis = new Redis(url, {
    maxRetriesPerRequest: null,
    connectionName: name,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: false,
  });
  // Connection errors are retried; without a listener ioredis would print each one.
  redis.on('error', () => {});
  return redis;
}

/** Resolves once `redis` answers, or rejects naming the URL after `timeoutMs`. */
export async function waitForRedis(redis: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ParryError(
            'BAD_OPTION',
            `queue: no Redis answers at ${redactUrl(url)} (waited ${timeoutMs / 1000} s)`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    await Promise.race([redis.ping(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
