/**
 * Runs one decision-based search per example and batches their queries. Each search is a
 * generator that reads like the paper's per-example algorithm: it yields the points it wants
 * classified and receives, per point, 1 if the point is on the attack's side (adversarial) and 0
 * if not. Every round collects the pending request of each unfinished search into labels-only
 * queries (`queryLabels`: the argmax of each answer, nothing else), so examples share model
 * calls without sharing any state. Queries are counted per example, exactly the rows sent.
 */
import type { QueryClassifier } from '../../models/classifier.js';
import { queryLabels } from './black-box.js';

/** `count` points, flat `[count, d]`, to classify. The search may reuse the array after resuming. */
export interface DecisionRequest {
  points: Float32Array;
  count: number;
}

/** A per-example search: yields requests, is resumed with one decision per requested point. */
export type DecisionSearch = Generator<DecisionRequest, void, Uint8Array>;

/**
 * How many points a search should put in one request, so that a round holds about `ROUND_ROWS`
 * points in all. Searches read it when they build a request; their results must not depend on it.
 */
export interface RoundSize {
  rowsPerExample: number;
}

/** Points per round across all examples: bounds the memory of one round's batch. */
const ROUND_ROWS = 4096;

export interface DecisionRoundsOptions {
  /** Rows per `predict` call. */
  batchSize: number;
  /** Shared with the searches; updated before every round. */
  roundSize: RoundSize;
  /** Called after every round with the queries spent so far per example. */
  onRound?: (queries: Int32Array) => void;
  /** Checked before every round; aborting rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Drives `searches` (one per example) to completion. `isAdversarial(k, label)` turns the top-1
 * label of a point of example k into its decision. Returns the queries spent per example.
 */
export async function runDecisionSearches(
  model: QueryClassifier,
  searches: DecisionSearch[],
  isAdversarial: (k: number, label: number) => boolean,
  opts: DecisionRoundsOptions,
): Promise<Int32Array> {
  const n = searches.length;
  const queries = new Int32Array(n);
  const pending: (DecisionRequest | null)[] = new Array(n).fill(null);
  const advance = (k: number, decisions?: Uint8Array) => {
    const next = decisions ? searches[k].next(decisions) : searches[k].next();
    pending[k] = next.done ? null : next.value;
  };
  opts.roundSize.rowsPerExample = Math.max(1, Math.floor(ROUND_ROWS / Math.max(n, 1)));
  for (let k = 0; k < n; k++) advance(k);
  for (;;) {
    const active = pending.flatMap((r, k) => (r ? [k] : []));
    if (active.length === 0) break;
    opts.signal?.throwIfAborted();
    const requests = active.map((k) => pending[k] as DecisionRequest);
    const total = requests.reduce((s, r) => s + r.count, 0);
    const d = requests[0].points.length / requests[0].count;
    const rows = new Float32Array(total * d);
    let at = 0;
    for (const r of requests) {
      rows.set(r.points.subarray(0, r.count * d), at * d);
      at += r.count;
    }
    const labels = await queryLabels(model, rows, total, opts.batchSize);
    opts.roundSize.rowsPerExample = Math.max(1, Math.floor(ROUND_ROWS / active.length));
    at = 0;
    active.forEach((k, j) => {
      const count = requests[j].count;
      const decisions = new Uint8Array(count);
      for (let i = 0; i < count; i++) decisions[i] = isAdversarial(k, labels[at + i]) ? 1 : 0;
      at += count;
      queries[k] += count;
      advance(k, decisions);
    });
    opts.onRound?.(queries);
    if (opts.signal) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  return queries;
}
