/**
 * Micro-batching: requests arriving close together share one forward pass. A request waits at
 * most `maxWaitMs` (from its arrival) for others; a batch runs as soon as `maxBatch` examples are
 * waiting. Batches run one at a time (the model is one engine); requests that arrive during a run
 * form the next batch. Each request gets back exactly its own rows, in order, and a batch that
 * fails rejects only its own requests.
 *
 * With `wait: 'incoming'`, a request waits only while others are announced (`announce`: received
 * by the service, not yet submitted or given up): a lone client never waits, and a batch runs as
 * soon as the last announced request has joined it. With `wait: 'always'` it waits out the timer.
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
   * fills. 'incoming': it waits only while announced requests are still on their way.
   */
  wait?: 'always' | 'incoming';
}

/** A request on its way to `submit` (see `announce`). */
export interface Arrival {
  /** Still counted as on its way. */
  pending: boolean;
}

/** Runs a batch: `rows` examples of `rowSize` values each, concatenated; one answer per row. */
export type RunBatch<R> = (x: Float32Array, rows: number) => Promise<R[]>;

interface Waiting<R> {
  x: Float32Array;
  rows: number;
  arrivedMs: number;
  resolve: (answers: R[]) => void;
  reject: (e: unknown) => void;
}

export class MicroBatcher<R> {
  private queue: Waiting<R>[] = [];
  private queuedRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  /** Announced requests not yet submitted or withdrawn. */
  private incoming = 0;

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
  }

  /**
   * Tells the batcher a request is on its way (under `wait: 'incoming'`, waiting requests wait
   * for it). Pass the arrival to `submit`, or to `withdraw` if the request never gets there; both
   * are safe to repeat.
   */
  announce(): Arrival {
    this.incoming++;
    return { pending: true };
  }

  /** The announced request will not be submitted (refused, or its client left). */
  withdraw(arrival: Arrival): void {
    if (!arrival.pending) return;
    arrival.pending = false;
    this.incoming--;
    this.schedule();
  }

  /** Answers for the `rows` examples in `x` (row-major, `rowSize` values each). */
  submit(x: Float32Array, rows: number, arrival?: Arrival): Promise<R[]> {
    const fits = Number.isInteger(rows) && rows >= 1 && x.length === rows * this.rowSize;
    if ((this.closed || !fits) && arrival) this.withdraw(arrival);
    if (this.closed) {
      return Promise.reject(new ParryError('UNSUPPORTED', 'MicroBatcher: closed'));
    }
    check(fits, () => `MicroBatcher: ${x.length} values are not ${rows} rows of ${this.rowSize}`);
    return new Promise<R[]>((resolve, reject) => {
      this.queue.push({ x, rows, arrivedMs: performance.now(), resolve, reject });
      this.queuedRows += rows;
      // No longer on its way only once it waits in the queue: the batch it joins cannot leave
      // without it.
      if (arrival?.pending) {
        arrival.pending = false;
        this.incoming--;
      }
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
    const waited = performance.now() - this.queue[0].arrivedMs;
    const alone = this.opts.wait === 'incoming' && this.incoming === 0;
    if (
      this.queuedRows >= this.opts.maxBatch ||
      waited >= this.opts.maxWaitMs ||
      alone ||
      this.closed
    ) {
      this.start();
    } else if (this.timer === undefined) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule();
      }, this.opts.maxWaitMs - waited);
    }
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
