import { describe, expect, it } from 'vitest';
import { MemoryQuotaStore, secondsToNextUtcDay } from '../../src/serve/quota.js';

// 2024-03-01T12:00:00Z: 43,200 s before the next UTC midnight.
const NOON = Date.UTC(2024, 2, 1, 12);

describe('MemoryQuotaStore', () => {
  it('lets a burst through, then refills at `rate` per second', async () => {
    const q = new MemoryQuotaStore({ rate: 2, burst: 5, perDay: 1000 });
    expect((await q.take('k', 5, NOON)).allowed).toBe(true);
    // Empty bucket: 1 token needs 0.5 s at 2/s → Retry-After rounds up to 1 s.
    expect(await q.take('k', 1, NOON)).toEqual({
      allowed: false,
      reason: 'rate',
      retryAfterSeconds: 1,
    });
    // 3 tokens need 1.5 s → 2 s.
    expect(await q.take('k', 3, NOON)).toEqual({
      allowed: false,
      reason: 'rate',
      retryAfterSeconds: 2,
    });
    // After 1 s: 2 tokens.
    expect((await q.take('k', 2, NOON + 1000)).allowed).toBe(true);
    expect((await q.take('k', 1, NOON + 1000)).allowed).toBe(false);
    // After a long pause the bucket holds at most `burst`.
    expect((await q.take('k', 5, NOON + 60_000)).allowed).toBe(true);
    expect((await q.take('k', 1, NOON + 60_000)).allowed).toBe(false);
  });

  it('charges nothing for a refused request', async () => {
    const q = new MemoryQuotaStore({ rate: 1, burst: 4, perDay: 1000 });
    expect((await q.take('k', 3, NOON)).allowed).toBe(true);
    expect((await q.take('k', 2, NOON)).allowed).toBe(false); // 1 token left
    expect((await q.take('k', 1, NOON)).allowed).toBe(true);
  });

  it('keeps keys apart', async () => {
    const q = new MemoryQuotaStore({ rate: 1, burst: 2, perDay: 1000 });
    expect((await q.take('a', 2, NOON)).allowed).toBe(true);
    expect((await q.take('b', 2, NOON)).allowed).toBe(true);
    expect((await q.take('a', 1, NOON)).allowed).toBe(false);
  });

  it('enforces the daily quota until the next UTC midnight', async () => {
    const q = new MemoryQuotaStore({ rate: 1000, burst: 10, perDay: 12 });
    expect(await q.take('k', 10, NOON)).toEqual({ allowed: true, remainingToday: 2 });
    expect(await q.take('k', 2, NOON + 1000)).toEqual({ allowed: true, remainingToday: 0 });
    expect(await q.take('k', 1, NOON + 2000)).toEqual({
      allowed: false,
      reason: 'daily',
      retryAfterSeconds: 43_200 - 2,
    });
    const nextDay = Date.UTC(2024, 2, 2, 0, 0, 1);
    expect(await q.take('k', 1, nextDay)).toEqual({ allowed: true, remainingToday: 11 });
  });

  it('refuses a cost above the burst (a request that could never pass)', async () => {
    const q = new MemoryQuotaStore({ rate: 1, burst: 2, perDay: 10 });
    await expect(q.take('k', 3, NOON)).rejects.toThrow(
      /cost must be an integer in \[1, burst = 2\], got 3/,
    );
  });

  it('drops idle keys once it tracks too many', async () => {
    const q = new MemoryQuotaStore({ rate: 1, burst: 1, perDay: 10 }, 3);
    await q.take('a', 1, NOON);
    await q.take('b', 1, NOON);
    await q.take('c', 1, NOON);
    expect(q.size).toBe(3);
    // A day later all three are full again with nothing used today: swept before 'd' is added.
    await q.take('d', 1, NOON + 86_400_000);
    expect(q.size).toBe(1);
  });

  it('counts seconds to the next UTC midnight', () => {
    expect(secondsToNextUtcDay(NOON)).toBe(43_200);
    expect(secondsToNextUtcDay(Date.UTC(2024, 2, 1, 23, 59, 59, 500))).toBe(1);
  });
});
