/**
 * Micro-batching: requests arriving close together share one forward pass. A request waits at
 * most `maxWaitMs` (from its arrival) for others; a batch runs as soon as `maxBatch` examples are
 * waiting. Batches run one at a time (the model is one engine); requests that arrive during a run
 * form the next batch. Each request gets back exactly its own rows, in order, and a batch that
 * fails rejects only its own requests.
 *
 * With `wait: 'busy'`, a request waits only for clients that are active: a `source` (the service
 * passes the connection) that submitted within the last `activeMs` and has nothing waiting in the
 * queue. A lone client never waits; with several, a batch runs as soon as every active client has
 * a request in it, or the timer ends, or the clients that stayed away stop counting as active.
 * Nothing reaches the batcher before its body is read, so this looks back (who came recently),
 * not ahead. With `wait: 'always'` the first request waits out the timer.
 *
 * Requests are never split: one larger than `maxBatch` runs alone.
 */
import { check, ParryError } from '../errors.js';

export interface BatcherOptions {
  /** Examples gathered into one run. */
  maxBatch: number;
  /** Longest wait of a request for others before its batch runs, in ms (0: no waiting). */
  maxWaitMs: number;
  /**
   * 'always' (the default here): the first waiting request waits out `maxWaitMs` unless the batch
   * fills. 'busy': it waits only while some other active source has nothing in the queue.
   */
  wait?: 'always' | 'busy';
  /** How long after its last request a source counts as active ('busy'), in ms (default 50). */
  activeMs?: number;
}

/** Runs a batch: `rows` examples of `rowSize` values each, concatenated; one answer per row. */
export type RunBatch<R> = (x: Float32Array, rows: number) => Promise<R[]>;

interface Waiting<R> {
  x: Float32Array;
  rows: number;
  arrivedMs: number;
  resolve: (answers: R[]) => void;
  reject: (e: unknown) => void;
  source?: object;
}

export class MicroBatcher<R> {
  private queue: Waiting<R>[] = [];
  private queuedRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** Each source's last submission (performance.now()), oldest first ('busy'). */
  private seen = new Map<object, number>();
  /** Requests waiting in the queue per source. */
  private queuedBy = new Map<object, number>();
  private readonly activeMs: number;

  constructor(
    private readonly run: RunBatch<R>,
    private readonly rowSize: number,
    private readonly opts: BatcherOptions,
    /** Told the size of every batch that runs (metrics). */
    private readonly onBatch?: (rows: number) => void,
  ) {
    check(
      Number.isInteger(opts.maxBatch) && opts.maxBatch >= 1,
      () => `MicroBatcher: maxBatch must be an integer >= 1, got ${opts.maxBatch}`,
      'BAD_OPTION',
    );
    check(
      Number.isFinite(opts.maxWaitMs) && opts.maxWaitMs >= 0,
      () => `MicroBatcher: maxWaitMs must be >= 0, got ${opts.maxWaitMs}`,
      'BAD_OPTION',
    );
    this.activeMs = opts.activeMs ?? 50;
    check(
      Number.isFinite(this.activeMs) && this.activeMs >= 0,
      () => `MicroBatcher: activeMs must be >= 0, got ${opts.activeMs}`,
      'BAD_OPTION',
    );
  }

  /**
   * Answers for the `rows` examples in `x` (row-major, `rowSize` values each). `source` names the
   * client (under `wait: 'busy'`, others wait for active sources; none: never waited for).
   */
  submit(x: Float32Array, rows: number, source?: object): Promise<R[]> {
    if (this.closed) {
      return Promise.reject(new ParryError('UNSUPPORTED', 'MicroBatcher: closed'));
    }
    check(
      Number.isInteger(rows) && rows >= 1 && x.length === rows * this.rowSize,
      () => `MicroBatcher: ${x.length} values are not ${rows} rows of ${this.rowSize}`,
    );
    return new Promise<R[]>((resolve, reject) => {
      const now = performance.now();
      if (source !== undefined && this.opts.wait === 'busy') {
        this.seen.delete(source); // re-inserted last: the map stays oldest first
        this.seen.set(source, now);
        this.queuedBy.set(source, (this.queuedBy.get(source) ?? 0) + 1);
      }
      this.queue.push({ x, rows, arrivedMs: now, resolve, reject, source });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /** Examples waiting (not yet in a running batch). */
  get waiting(): number {
    return this.queuedRows;
  }

  /** Refuses new requests and resolves once every waiting and running one has its answer. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running !== undefined || this.queue.length > 0) {
      if (this.running === undefined) this.start();
      await this.running;
    }
  }

  private schedule(): void {
    if (this.running !== undefined || this.queue.length === 0) return;
    const now = performance.now();
    const waited = now - this.queue[0].arrivedMs;
    let waitMs = this.opts.maxWaitMs - waited;
    if (this.opts.wait === 'busy') waitMs = Math.min(waitMs, this.awaitedForMs(now));
    if (this.queuedRows >= this.opts.maxBatch || waitMs <= 0 || this.closed) {
      this.start();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, waitMs);
    }
  }

  /**
   * How long an active source with nothing in the queue stays active (0: none is). Sources idle
   * for `activeMs` are forgotten.
   */
  private awaitedForMs(now: number): number {
    for (const [source, t] of this.seen) {
      if (now - t < this.activeMs) break;
      this.seen.delete(source);
    }
    for (const [source, t] of this.seen) {
      if (!this.queuedBy.has(source)) return t + this.activeMs - now;
    }
    return 0;
  }

  /** Takes the head of the queue (at least one request, at most maxBatch rows) and runs it. */
  private start(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const batch: Waiting<R>[] = [];
    let rows = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0];
      if (batch.length > 0 && rows + next.rows > this.opts.maxBatch) break;
      batch.push(this.queue.shift()!);
      rows += next.rows;
      if (next.source !== undefined && this.queuedBy.has(next.source)) {
        const left = this.queuedBy.get(next.source)! - 1;
        if (left === 0) this.queuedBy.delete(next.source);
        else this.queuedBy.set(next.source, left);
      }
    }
    this.queuedRows -= rows;
    this.running = this.runBatch(batch, rows).finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  private async runBatch(batch: Waiting<R>[], rows: number): Promise<void> {
    let x: Float32Array;
    if (batch.length === 1) x = batch[0].x;
    else {
      x = new Float32Array(rows * this.rowSize);
      let offset = 0;
      for (const w of batch) {
        x.set(w.x, offset);
        offset += w.x.length;
      }
    }
    this.onBatch?.(rows);
    let answers: R[];
    try {
      answers = await this.run(x, rows);
      check(
        answers.length === rows,
        () => `MicroBatcher: the batch of ${rows} rows got ${answers.length} answers`,
        'INTERNAL',
      );
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    let start = 0;
    for (const w of batch) {
      w.resolve(answers.slice(start, start + w.rows));
      start += w.rows;
    }
  }
}
