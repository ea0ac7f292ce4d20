/**
 * The Redis quota store against a real redis-server (started here on a free loopback port, its
 * own folder, stopped by pid): the same decisions as the memory store on the same requests, one
 * atomic quota for concurrent clients on two connections, and two services on one Redis
 * enforcing one quota over real HTTP (the request after the quota gets 429 with Retry-After,
 * whichever instance it reaches).
 */
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/engine/rng.js';
import { parseGuardConfig } from '../../src/serve/guard-config.js';
import { MemoryQuotaStore } from '../../src/serve/quota.js';
import { checkRedisUrl, RedisQuotaStore, redactUrl } from '../../src/serve/redis-quota.js';
import { createService } from '../../src/serve/server.js';
import { ToyModel, toyInput } from './helpers.js';
import { freePort, startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

const NOON = Date.UTC(2024, 2, 1, 12);
let prefixes = 0;
/** A store with a prefix of its own, so tests do not see each other's keys. */
const store = (config: { rate: number; burst: number; perDay: number }, prefix?: string) =>
  RedisQuotaStore.connect(redis.url, config, { prefix: prefix ?? `test${prefixes++}:` });

describe('RedisQuotaStore', () => {
  it('decides as the memory store, request for request (bursts, refills, days, keys)', async () => {
    const config = { rate: 2.5, burst: 7, perDay: 40 };
    const r = await store(config);
    const m = new MemoryQuotaStore(config);
    const rng = new Rng(3);
    let now = NOON - 3_600_000 * 2; // crosses midnight twice over the sequence
    let refused = 0;
    for (let i = 0; i < 400; i++) {
      now += rng.int(5) === 0 ? rng.int(4_000_000) : rng.int(1500);
      const key = `k${rng.int(3)}`;
      const cost = 1 + rng.int(7);
      const expected = await m.take(key, cost, now);
      expect(await r.take(key, cost, now), `request ${i}`).toEqual(expected);
      if (!expected.allowed) refused++;
    }
    // The sequence exercised both kinds of refusal.
    expect(refused).toBeGreaterThan(20);
    await r.close();
  });

  it('hand-computed: burst, Retry-After, daily quota until midnight', async () => {
    const r = await store({ rate: 2, burst: 5, perDay: 8 });
    expect(await r.take('k', 5, NOON)).toEqual({ allowed: true, remainingToday: 3 });
    // 3 tokens at 2/s: 1.5 s → 2.
    expect(await r.take('k', 3, NOON)).toEqual({
      allowed: false,
      reason: 'rate',
      retryAfterSeconds: 2,
    });
    expect(await r.take('k', 3, NOON + 1500)).toEqual({ allowed: true, remainingToday: 0 });
    expect(await r.take('k', 1, NOON + 60_000)).toEqual({
      allowed: false,
      reason: 'daily',
      retryAfterSeconds: 43_200 - 60,
    });
    expect(await r.take('k', 1, Date.UTC(2024, 2, 2))).toEqual({
      allowed: true,
      remainingToday: 7,
    });
    await expect(r.take('k', 6, NOON)).rejects.toThrow(
      /cost must be an integer in \[1, burst = 5\], got 6/,
    );
    await r.close();
  });

  it('one quota for concurrent clients on two connections (check and charge are atomic)', async () => {
    const config = { rate: 1e-6, burst: 10, perDay: 1000 };
    const [a, b] = [await store(config, 'shared-a:'), await store(config, 'shared-a:')];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).take('k', 1, NOON)),
    );
    expect(results.filter((x) => x.allowed).length).toBe(10);
    await Promise.all([a.close(), b.close()]);
  });

  it('lets idle keys expire once they would start afresh', async () => {
    const r = await store({ rate: 1, burst: 10, perDay: 100 }, 'expiry:');
    await r.take('k', 4, NOON);
    const probe = new Redis(redis.url);
    // Full again in 4 s, but the day's count lives until midnight (12 h) plus a second.
    const ttl = await probe.pttl('expiry:k');
    expect(ttl).toBeGreaterThan(43_200_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(43_201_000);
    probe.disconnect();
    await r.close();
  });

  it('refuses with 503 while Redis is away, and names an unreachable Redis at start', async () => {
    const other = await startRedis();
    const r = await RedisQuotaStore.connect(other.url, { rate: 1, burst: 1, perDay: 1 });
    await other.stop();
    await expect(r.take('k', 1, NOON)).rejects.toMatchObject({
      statusCode: 503,
      code: 'quota_unavailable',
    });
    await r.close();
    const port = await freePort();
    await expect(
      RedisQuotaStore.connect(
        `redis://127.0.0.1:${port}`,
        { rate: 1, burst: 1, perDay: 1 },
        { connectTimeoutMs: 1000 },
      ),
    ).rejects.toThrow(new RegExp(`--redis: cannot reach Redis at redis://127.0.0.1:${port}`));
  });

  it('a service whose Redis goes away answers 503 quota_unavailable, not 200', async () => {
    const other = await startRedis();
    const guard = parseGuardConfig({});
    const app = await createService({
      model: new ToyModel(),
      guard,
      quotaStore: await RedisQuotaStore.connect(other.url, guard.guards.quota),
    });
    const ask = () =>
      app.inject({ method: 'POST', url: '/v1/predict', payload: { inputs: [toyInput(0.5)] } });
    expect((await ask()).statusCode).toBe(200);
    await other.stop();
    const res = await ask();
    expect([res.statusCode, res.json().error.code]).toEqual([503, 'quota_unavailable']);
    expect(res.json().error.message).toMatch(
      /the quota store \(Redis at redis:\/\/127\.0\.0\.1:\d+\/?\) cannot be reached/,
    );
    await app.close();
  });

  it('checks and redacts URLs', () => {
    expect(() => checkRedisUrl('http://x')).toThrow(
      /--redis: 'http:\/\/x' is not a redis:\/\/HOST:PORT or rediss:\/\/HOST:PORT URL/,
    );
    expect(() => checkRedisUrl('nope')).toThrow(/'nope' is not a URL/);
    expect(redactUrl('redis://user:secret@h:1/0')).toBe('redis://user:***@h:1/0');
  });
});

describe('two services on one Redis', () => {
  it('enforce one quota: the request after it gets 429 with Retry-After on either instance', async () => {
    const guard = parseGuardConfig({
      guards: {
        quota: { rate: 1000, burst: 64, perDay: 5 },
        perAddress: { max: 1e6, windowMs: 60_000 },
      },
    });
    const apps: FastifyInstance[] = [];
    const urls: string[] = [];
    for (let i = 0; i < 2; i++) {
      const app = await createService({
        model: new ToyModel(),
        guard,
        quotaStore: await store(guard.guards.quota, 'two-services:'),
      });
      apps.push(app);
      urls.push(await app.listen({ port: 0, host: '127.0.0.1' }));
    }
    const ask = (url: string) =>
      fetch(`${url}/v1/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ inputs: [toyInput(0.5)] }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await ask(urls[i % 2])).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    for (const url of urls) {
      const res = await ask(url);
      expect(res.status).toBe(429);
      const body = (await res.json()) as { error: { code: string } };
      expect(body.error.code).toBe('quota_exceeded');
      // Until the next UTC midnight.
      const retry = Number(res.headers.get('retry-after'));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(86_400);
    }
    await Promise.all(apps.map((a) => a.close()));
  });
});
