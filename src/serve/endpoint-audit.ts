/**
 * The endpoint audit (`parry audit`): a black-box evaluation of a prediction endpoint within one
 * query budget. Threat model: the auditor sees only the endpoint's answers (probabilities, or
 * labels only), holds labelled data of the task, and may send at most `budget` examples.
 *
 * Stages, in order, each with its share of the budget (`planAudit`):
 * - clean: the endpoint's accuracy on the first `n` test examples (n queries);
 * - square: Square Attack (score-based; skipped when the endpoint answers labels only) on the
 *   correctly classified ones, within eps in `norm`: robust accuracy;
 * - hsj: HopSkipJump (decision-based, capped to the same eps ball): robust accuracy;
 * - membership: the label-only noise signal (share of noisy copies still labelled y) on the first
 *   n training examples and the n test examples, reported as raw statistics and the AUC between
 *   the two — a leak only if the training split really is the endpoint's training data (an
 *   assumption: there are no reference models to calibrate a threshold);
 * - knockoff, copycat: model stealing from the training split as pool; the thief's accuracy,
 *   agreement with the endpoint and transfer rate on the test examples (transfer costs n queries;
 *   the clean answers are reused).
 * A stage the endpoint stops (403, or 429 with a long Retry-After) or that would go past its share
 * is recorded as stopped with the reason; later stages still run.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import { type Dataset, exampleSize } from '../data/dataset.js';
import { check } from '../errors.js';
import type { QueryClassifier } from '../models/classifier.js';
import { parseWith } from '../options.js';
import {
  AUDIT_STAGES,
  type AuditConfig,
  type AuditData,
  type AuditResults,
  type AuditStage,
  type AuditTarget,
  auditConfigSchema,
  planAudit,
  type StageRecord,
} from './audit-config.js';
import { evasionStage, membershipStage, type StageOutcome, stealingStage } from './audit-stages.js';
import { EndpointRefusal, QueryLimitReached } from './http-classifier.js';

export * from './audit-config.js';

/** Argmax labels of the target on `data`'s examples, `batch` at a time. */
async function labelsOf(target: QueryClassifier, data: Dataset, batch = 64): Promise<Int32Array> {
  const n = data.shape[0];
  const per = exampleSize(data);
  const out = new Int32Array(n);
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const x = tf.tensor(data.x.subarray(s * per, (s + m) * per), [m, ...data.shape.slice(1)]);
    const p = await target.predict(x);
    const top = tf.argMax(p, 1);
    out.set(await top.data(), s);
    tf.dispose([x, p, top]);
  }
  return out;
}

/** Runs the audit; `onStage` hears each stage as it ends. */
export async function runAudit(
  target: AuditTarget,
  data: AuditData,
  config: z.input<typeof auditConfigSchema>,
  onStage?: (r: StageRecord) => void,
): Promise<AuditResults> {
  const c = parseWith('audit', auditConfigSchema, config);
  const n = data.test.shape[0];
  check(n === c.n, () => `audit: the test set holds ${n} examples, n is ${c.n}`);
  const plan = planAudit(c.budget, n, c.stages);
  target.limit = c.budget;
  const predictions = await labelsOf(target, data.test);
  const correct = Array.from({ length: n }, (_, i) => i).filter(
    (i) => predictions[i] === data.test.labels[i],
  );
  const results: AuditResults = {
    kind: 'endpoint-audit',
    blackBox: true,
    config: c,
    dataset: { name: data.test.name, n, pool: data.train.name },
    clean: {
      accuracy: correct.length / n,
      queries: target.queries,
      predictions: Array.from(predictions),
    },
    stages: [],
    queries: 0,
    notes: [],
  };
  for (const stage of c.stages) {
    // Each stage draws from its own seed: two stealing methods would otherwise pick the same
    // pool examples, and the second would be answered from the first one's cache.
    const seed = (c.seed + AUDIT_STAGES.indexOf(stage)) >>> 0;
    const record = await runStage(stage, plan[stage], target, data, { ...c, seed }, correct);
    results.stages.push(record);
    onStage?.(record);
  }
  target.limit = c.budget;
  results.queries = target.queries;
  return results;
}

type StageBody = (share: number) => Promise<StageOutcome>;

async function runStage(
  stage: AuditStage,
  share: number,
  target: AuditTarget,
  data: AuditData,
  c: AuditConfig,
  correct: number[],
): Promise<StageRecord> {
  const started = performance.now();
  const before = target.queries;
  const record = (status: StageRecord['status'], extra: Partial<StageRecord>): StageRecord => ({
    stage,
    seed: c.seed,
    status,
    share,
    queries: target.queries - before,
    seconds: (performance.now() - started) / 1000,
    ...extra,
  });
  const bodies: Record<AuditStage, StageBody> = {
    square: (s) => evasionStage('square', s, target, data.test, c, correct),
    hsj: (s) => evasionStage('hsj', s, target, data.test, c, correct),
    membership: (s) => membershipStage(s, target, data, c),
    knockoff: (s) => stealingStage('knockoff', s, target, data, c),
    copycat: (s) => stealingStage('copycat', s, target, data, c),
  };
  target.limit = before + share;
  try {
    const { metrics, note } = await bodies[stage](share);
    return record(metrics === undefined ? 'skipped' : 'done', { metrics, note });
  } catch (e) {
    if (e instanceof EndpointRefusal) {
      return record('stopped', {
        note: e.message,
        refusal: { status: e.status, code: e.errorCode },
      });
    }
    if (e instanceof QueryLimitReached) return record('stopped', { note: e.message });
    throw e;
  }
}
