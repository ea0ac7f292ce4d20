/**
 * A prediction endpoint seen from outside, as a `QueryClassifier`: every black-box attack runs
 * against it unchanged. It speaks parry's predict API (`POST {url}/v1/predict`, `GET
 * {url}/v1/model` for the input shape, classes and bounds), or any JSON API an adapter describes
 * (endpoint-adapter.ts).
 *
 * - Queries: every example sent and answered counts (`queries`); `limit` refuses, before
 *   sending, a batch that would go past it. Identical examples are answered from a cache (their
 *   first answer) and cost nothing; a randomised endpoint's answer is thereby frozen per example.
 * - Refusals: 429 is waited out when its Retry-After is at most `maxWaitSeconds`, else it ends the
 *   calling stage with an `EndpointRefusal` (so does 403, e.g. an extraction monitor's block);
 *   5xx and network failures are retried `retries` times; any other status is a BAD_INPUT error
 *   quoting the endpoint's message.
 * - Answers: rows of probabilities when the endpoint gives them, else one-hot labels (decision
 *   only; `outputs` says which, counting probabilities that are always one-hot as labels). An
 *   abstention (parry's smoothing guard) becomes the uniform row, whose argmax reads as class 0;
 *   abstentions are counted.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { check, ParryError } from '../errors.js';
import type { QueryClassifier } from '../models/classifier.js';
import { parseWith } from '../options.js';
import {
  type Adapter,
  errorOf,
  fillTemplate,
  nestRow,
  readPath,
  retryAfterSeconds,
} from './endpoint-adapter.js';

export interface EndpointInfo {
  inputShape: number[];
  numClasses: number;
  bounds: [number, number];
  classNames?: string[];
  maxBatch: number;
  /** parry's /v1/model `guards` summary, when the endpoint is a parry service. */
  guards?: Record<string, unknown>;
}

export interface HttpClassifierOptions {
  /** Extra request headers, e.g. { authorization: 'Bearer …' }. */
  headers?: Record<string, string>;
  adapter?: Adapter;
  /** Longest Retry-After waited out; a longer one ends the stage. Default 60 s. */
  maxWaitSeconds?: number;
  /** Retries of a 5xx or a network failure. Default 3. */
  retries?: number;
  /** Per-request timeout. Default 60 s. */
  timeoutMs?: number;
  /** Waiting (tests replace it). */
  sleep?: (ms: number) => Promise<void>;
}

/** The endpoint refused to go on (429 with a long Retry-After, or 403): ends a stage, not the audit. */
export class EndpointRefusal extends ParryError {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super('UNSUPPORTED', message);
    this.name = 'EndpointRefusal';
  }
}

/** A stage asked for more queries than it was given. */
export class QueryLimitReached extends ParryError {
  constructor(message: string) {
    super('UNSUPPORTED', message);
    this.name = 'QueryLimitReached';
  }
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class HttpQueryClassifier implements QueryClassifier {
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly bounds: [number, number];
  /** Examples sent and answered. */
  queries = 0;
  /** Requests sent (retries included). */
  requests = 0;
  abstentions = 0;
  /** Seconds spent waiting out Retry-After. */
  waitedSeconds = 0;
  /** Refuse batches that would take `queries` past this. */
  limit = Number.POSITIVE_INFINITY;
  private answered = false;
  private sawScores = false;
  private readonly cache = new Map<string, Float32Array>();
  private readonly rowSize: number;

  /**
   * What the endpoint answers: 'scores' once a row was not one-hot, 'labels' while every row was
   * (labels only, or probabilities rounded to one-hot); undefined before the first answer.
   */
  get outputs(): 'scores' | 'labels' | undefined {
    return this.answered ? (this.sawScores ? 'scores' : 'labels') : undefined;
  }

  private constructor(
    private readonly url: string,
    readonly info: EndpointInfo,
    private readonly o: HttpClassifierOptions,
  ) {
    this.inputShape = info.inputShape;
    this.numClasses = info.numClasses;
    this.bounds = info.bounds;
    this.rowSize = info.inputShape.reduce((a, b) => a * b, 1);
  }

  /** The endpoint at `url`: a parry service (asked GET /v1/model), or what `adapter` describes. */
  static async connect(url: string, o: HttpClassifierOptions = {}): Promise<HttpQueryClassifier> {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw new ParryError('BAD_OPTION', `--url: '${url}' is not a URL`);
    }
    check(
      base.protocol === 'http:' || base.protocol === 'https:',
      () => `--url: expected an http:// or https:// URL, got '${url}'`,
      'BAD_OPTION',
    );
    const root = url.replace(/\/+$/, '');
    if (o.adapter) {
      const a = o.adapter;
      return new HttpQueryClassifier(root, { ...a, bounds: a.bounds as [number, number] }, o);
    }
    const c = new HttpQueryClassifier(
      root,
      { inputShape: [1], numClasses: 2, bounds: [0, 1], maxBatch: 1 },
      o,
    );
    const m = (await c.send('GET', `${root}/v1/model`, undefined)) as Record<string, unknown>;
    const info = parseWith('endpoint /v1/model', modelInfoSchema, m);
    return new HttpQueryClassifier(
      root,
      {
        inputShape: info.inputShape,
        numClasses: info.numClasses,
        bounds: info.bounds as [number, number],
        classNames: info.classNames,
        maxBatch: Number((info.guards.input as { maxBatch?: number } | undefined)?.maxBatch ?? 32),
        guards: info.guards,
      },
      o,
    );
  }

  async predict(x: tf.Tensor): Promise<tf.Tensor2D> {
    const n = x.shape[0];
    check(
      tf.util.arraysEqual(x.shape.slice(1), this.inputShape),
      () => `endpoint: x must have shape [batch, ${this.inputShape}], got [${x.shape}]`,
    );
    const values = (await x.data()) as Float32Array;
    const k = this.numClasses;
    const out = new Float32Array(n * k);
    const todo: number[] = [];
    const keys: string[] = [];
    for (let i = 0; i < n; i++) {
      const row = values.subarray(i * this.rowSize, (i + 1) * this.rowSize);
      const key = createHash('sha1')
        .update(Buffer.from(row.buffer, row.byteOffset, row.byteLength))
        .digest('base64');
      keys.push(key);
      const hit = this.cache.get(key);
      if (hit) out.set(hit, i * k);
      else todo.push(i);
    }
    for (let s = 0; s < todo.length; s += this.info.maxBatch) {
      const batch = todo.slice(s, s + this.info.maxBatch);
      if (this.queries + batch.length > this.limit) {
        throw new QueryLimitReached(
          `endpoint: ${batch.length} more queries would pass the limit of ${this.limit} (${this.queries} used)`,
        );
      }
      const rows = batch.map((i) => values.subarray(i * this.rowSize, (i + 1) * this.rowSize));
      const answers = await this.ask(rows);
      this.queries += batch.length;
      batch.forEach((i, j) => {
        out.set(answers[j], i * k);
        this.cache.set(keys[i], answers[j]);
      });
    }
    return tf.tensor2d(out, [n, k]);
  }

  /** Rows of answers for `rows`, one request. */
  private async ask(rows: Float32Array[]): Promise<Float32Array[]> {
    const a = this.o.adapter;
    if (a === undefined) {
      const body = { inputs: rows.map((r) => nestRow(r, this.inputShape)) };
      const reply = (await this.send('POST', `${this.url}/v1/predict`, body)) as {
        predictions?: { label: number | null; probabilities?: number[]; abstained?: boolean }[];
      };
      const preds = reply?.predictions;
      if (!Array.isArray(preds) || preds.length !== rows.length) {
        throw this.badAnswer(`expected ${rows.length} predictions`);
      }
      return preds.map((p) =>
        p.probabilities
          ? this.scoresRow(p.probabilities)
          : p.label === null || p.abstained
            ? this.abstainedRow()
            : this.labelRow(p.label),
      );
    }
    const inputs = rows.map((r) =>
      a.request.layout === 'flat' ? nestRow(r, [r.length]) : nestRow(r, this.inputShape),
    );
    const reply = await this.send(
      'POST',
      this.url + a.request.path,
      fillTemplate(a.request.body, inputs),
    );
    let read: unknown;
    try {
      read = readPath(reply, a.response.probabilities ?? a.response.labels!);
    } catch (e) {
      throw this.badAnswer((e as Error).message);
    }
    if (!Array.isArray(read) || read.length !== rows.length) {
      throw this.badAnswer(
        `expected ${rows.length} answers at '${a.response.probabilities ?? a.response.labels}'`,
      );
    }
    return read.map((v) => (a.response.probabilities ? this.scoresRow(v) : this.labelRow(v)));
  }

  private scoresRow(v: unknown): Float32Array {
    if (!Array.isArray(v) || v.length !== this.numClasses || v.some((p) => typeof p !== 'number')) {
      throw this.badAnswer(`expected ${this.numClasses} probabilities per example`);
    }
    this.answered = true;
    const row = Float32Array.from(v as number[]);
    if (!row.every((p) => p === 0 || p === 1) || row.reduce((a, b) => a + b, 0) !== 1) {
      this.sawScores = true;
    }
    return row;
  }

  private labelRow(v: unknown): Float32Array {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= this.numClasses) {
      throw this.badAnswer(`expected a label in [0, ${this.numClasses}), got ${JSON.stringify(v)}`);
    }
    this.answered = true;
    const row = new Float32Array(this.numClasses);
    row[v] = 1;
    return row;
  }

  private abstainedRow(): Float32Array {
    this.abstentions++;
    this.answered = true;
    return new Float32Array(this.numClasses).fill(1 / this.numClasses);
  }

  private badAnswer(what: string): ParryError {
    return new ParryError('BAD_INPUT', `endpoint ${this.url}: unexpected answer: ${what}`);
  }

  /** One JSON request with the retry and refusal rules of the module comment. */
  private async send(method: 'GET' | 'POST', url: string, body: unknown): Promise<unknown> {
    const sleep = this.o.sleep ?? sleepMs;
    const retries = this.o.retries ?? 3;
    const maxWait = this.o.maxWaitSeconds ?? 60;
    for (let attempt = 0; ; attempt++) {
      this.requests++;
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: {
            accept: 'application/json',
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...(this.o.headers ?? {}),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 60_000),
        });
      } catch (e) {
        if (attempt < retries) {
          await sleep(500 * 2 ** attempt);
          continue;
        }
        throw new ParryError('BAD_INPUT', `endpoint ${url}: no answer: ${(e as Error).message}`);
      }
      const text = await res.text();
      if (res.ok) {
        try {
          return JSON.parse(text);
        } catch {
          throw new ParryError(
            'BAD_INPUT',
            `endpoint ${url}: the answer is not JSON: ${text.slice(0, 120)}`,
          );
        }
      }
      const { code, message } = errorOf(text, res.status);
      if (res.status === 429) {
        const wait = retryAfterSeconds(res.headers.get('retry-after'));
        if (wait !== undefined && wait <= maxWait) {
          this.waitedSeconds += wait;
          await sleep(wait * 1000);
          continue;
        }
        throw new EndpointRefusal(429, code, `endpoint ${url}: 429 ${code}: ${message}`, wait);
      }
      if (res.status === 403)
        throw new EndpointRefusal(403, code, `endpoint ${url}: 403 ${code}: ${message}`);
      if (res.status >= 500 && attempt < retries) {
        await sleep(500 * 2 ** attempt);
        continue;
      }
      throw new ParryError('BAD_INPUT', `endpoint ${url}: ${res.status} ${code}: ${message}`);
    }
  }
}

const modelInfoSchema = z.object({
  inputShape: z.array(z.number().int().positive()).min(1),
  numClasses: z.number().int().min(2),
  bounds: z.tuple([z.number(), z.number()]),
  classNames: z.array(z.string()).optional(),
  guards: z.record(z.string(), z.unknown()).default({}),
});
