import { describe, expect, it } from 'vitest';
import { MicroBatcher } from '../../src/serve/batcher.js';

/** A "model" that answers each row with its first value ×10 and records the batch sizes. */
function recorder(delayMs = 0, failOn?: number) {
  const sizes: number[] = [];
  const run = async (x: Float32Array, rows: number) => {
    sizes.push(rows);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    const size = x.length / rows;
    const firsts = Array.from({ length: rows }, (_, r) => x[r * size]);
    if (failOn !== undefined && firsts.includes(failOn)) throw new Error(`bad row ${failOn}`);
    return firsts.map((v) => v * 10);
  };
  return { sizes, run };
}

const row = (v: number, size = 3) => new Float32Array(size).fill(v);

describe('MicroBatcher', () => {
  it('gathers concurrent requests into one run and gives each its own rows back', async () => {
    const m = recorder();
    const b = new MicroBatcher(m.run, 3, { maxBatch: 8, maxWaitMs: 50 });
    const two = new Float32Array([1, 1, 1, 2, 2, 2]);
    const results = await Promise.all([b.submit(row(7), 1), b.submit(two, 2), b.submit(row(9), 1)]);
    expect(m.sizes).toEqual([4]);
    expect(results).toEqual([[70], [10, 20], [90]]);
    await b.close();
  });

  it('runs at once when maxBatch rows wait; a partial batch waits for its timer', async () => {
    const m = recorder();
    const b = new MicroBatcher(m.run, 3, { maxBatch: 4, maxWaitMs: 150 });
    const started = performance.now();
    const full = await Promise.all(Array.from({ length: 8 }, (_, i) => b.submit(row(i), 1)));
    const fullMs = performance.now() - started;
    // Two full batches of 4 run without waiting for the timer.
    expect(m.sizes).toEqual([4, 4]);
    expect(fullMs).toBeLessThan(120);
    expect(full.map((r) => r[0])).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
    const t1 = performance.now();
    const partial = await Promise.all([b.submit(row(8), 1), b.submit(row(9), 1)]);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(140);
    expect(m.sizes).toEqual([4, 4, 2]);
    expect(partial).toEqual([[80], [90]]);
    await b.close();
  });

  it('never splits a request: one larger than maxBatch runs alone', async () => {
    const m = recorder();
    const b = new MicroBatcher(m.run, 1, { maxBatch: 2, maxWaitMs: 0 });
    const out = await Promise.all([
      b.submit(new Float32Array([1, 2, 3]), 3),
      b.submit(row(4, 1), 1),
    ]);
    expect(out).toEqual([[10, 20, 30], [40]]);
    expect(m.sizes).toEqual([3, 1]);
    await b.close();
  });

  it('waits at most maxWaitMs for company', async () => {
    const m = recorder();
    const b = new MicroBatcher(m.run, 3, { maxBatch: 64, maxWaitMs: 30 });
    const t0 = performance.now();
    await b.submit(row(1), 1);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThanOrEqual(25);
    expect(waited).toBeLessThan(1000);
    expect(m.sizes).toEqual([1]);
    await b.close();
  });

  describe("wait: 'busy'", () => {
    const busy = { maxBatch: 64, maxWaitMs: 10_000, wait: 'busy' as const };
    const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));
    const A = { client: 'A' };
    const B = { client: 'B' };

    it('a lone client never waits, however long maxWaitMs is', async () => {
      const m = recorder();
      const b = new MicroBatcher(m.run, 3, busy);
      const t0 = performance.now();
      for (let i = 1; i <= 5; i++) expect(await b.submit(row(i), 1, A)).toEqual([10 * i]);
      expect(await b.submit(row(6), 1)).toEqual([60]); // no source: never waited for
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(m.sizes).toEqual([1, 1, 1, 1, 1, 1]);
      await b.close();
    });

    it('waits for another active client and runs as soon as it joins', async () => {
      const m = recorder();
      const b = new MicroBatcher(m.run, 3, { ...busy, activeMs: 5_000 });
      await b.submit(row(1), 1, A); // alone: runs at once
      const t0 = performance.now();
      const fromB = b.submit(row(2), 1, B); // A was active: B waits for it
      await tick();
      expect(m.sizes).toEqual([1]);
      const fromA = b.submit(row(3), 1, A);
      expect(await Promise.all([fromB, fromA])).toEqual([[20], [30]]);
      expect(m.sizes).toEqual([1, 2]);
      expect(performance.now() - t0).toBeLessThan(1000);
      await b.close();
    });

    it('stops waiting once the other client has been idle for activeMs', async () => {
      const m = recorder();
      const b = new MicroBatcher(m.run, 3, { ...busy, activeMs: 60 });
      await b.submit(row(1), 1, A);
      const t0 = performance.now();
      expect(await b.submit(row(2), 1, B)).toEqual([20]);
      const waited = performance.now() - t0;
      expect(waited).toBeGreaterThanOrEqual(40); // A stayed active until 60 ms after its request
      expect(waited).toBeLessThan(1000);
      // A is forgotten: B alone again.
      const t1 = performance.now();
      await b.submit(row(3), 1, B);
      expect(performance.now() - t1).toBeLessThan(40);
      await b.close();
    });

    it('maxWaitMs still bounds the wait', async () => {
      const m = recorder();
      const b = new MicroBatcher(m.run, 3, { ...busy, maxWaitMs: 30, activeMs: 10_000 });
      await b.submit(row(1), 1, A);
      const t0 = performance.now();
      expect(await b.submit(row(2), 1, B)).toEqual([20]);
      const waited = performance.now() - t0;
      expect(waited).toBeGreaterThanOrEqual(25);
      expect(waited).toBeLessThan(1000);
      await b.close();
    });
  });

  it('requests arriving during a run form the next batch', async () => {
    const m = recorder(40);
    const b = new MicroBatcher(m.run, 3, { maxBatch: 16, maxWaitMs: 0 });
    const first = b.submit(row(1), 1);
    await new Promise((r) => setTimeout(r, 5)); // the first batch is running
    const rest = Array.from({ length: 5 }, (_, i) => b.submit(row(i + 2), 1));
    const out = await Promise.all([first, ...rest]);
    expect(m.sizes).toEqual([1, 5]);
    expect(out.map((r) => r[0])).toEqual([10, 20, 30, 40, 50, 60]);
    await b.close();
  });

  it('a failing batch rejects only its own requests', async () => {
    const m = recorder(20, 3);
    const b = new MicroBatcher(m.run, 3, { maxBatch: 2, maxWaitMs: 0 });
    const settled = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((v) => b.submit(row(v), 1)));
    // [1] starts at once (maxWaitMs 0); 2..6 queue during its run: [2,3], [4,5], [6].
    expect(m.sizes).toEqual([1, 2, 2, 1]);
    const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [i + 1] : []));
    expect(rejected).toEqual([2, 3]);
    for (const s of settled) {
      if (s.status === 'rejected') expect(String(s.reason)).toMatch(/bad row 3/);
    }
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value[0] : null))).toEqual([
      10,
      null,
      null,
      40,
      50,
      60,
    ]);
    // The batcher still works afterwards.
    expect(await b.submit(row(8), 1)).toEqual([80]);
    await b.close();
  });

  it('close answers what waits, then refuses new requests', async () => {
    const m = recorder(10);
    const b = new MicroBatcher(m.run, 3, { maxBatch: 2, maxWaitMs: 10_000 });
    const pending = [b.submit(row(1), 1), b.submit(row(2), 1), b.submit(row(3), 1)];
    await b.close();
    expect(await Promise.all(pending)).toEqual([[10], [20], [30]]);
    await expect(b.submit(row(4), 1)).rejects.toThrow(/closed/);
  });

  it('refuses rows that do not match the row size', () => {
    const b = new MicroBatcher(recorder().run, 3, { maxBatch: 2, maxWaitMs: 0 });
    expect(() => b.submit(new Float32Array(4), 1)).toThrow(/4 values are not 1 rows of 3/);
  });
});
