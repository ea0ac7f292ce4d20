/**
 * The endpoint audit (`parry audit`): a black-box evaluation of a prediction endpoint within one
 * query budget. Threat model: the auditor sees only the endpoint's answers (probabilities, or
 * labels only), holds labelled data of the task, and may send at most `budget` examples.
 *
 * Stages, in order, each with its share of the budget (`planAudit`):
 * - clean: the endpoint's predictions on the first `n` test examples (n queries); an abstention
 *   (the uniform answer) is recorded as -1 and is not correct;
 * - square: Square Attack (score-based; skipped when the endpoint answers labels only) on the
 *   correctly classified ones, within eps in `norm`: per-example outcomes, robust accuracy;
 * - hsj: HopSkipJump (decision-based, capped to the same eps ball): the same;
 * - membership, augmentation: the label-only noise and augmentation signals (share of noisy or
 *   augmented copies still labelled y) on the first n training examples and the n test
 *   examples, scored by the ROC between the two — a leak only if the training split really is
 *   the endpoint's training data (an assumption: there are no reference models to calibrate a
 *   threshold);
 * - knockoff, copycat, jacobian: model stealing from the training split as pool; the thief's
 *   accuracy, agreement with the endpoint and transfer rate on the test examples (transfer costs
 *   n queries; the clean answers are reused).
 * A stage the endpoint stops (403, or 429 with a long Retry-After) or that would go past its share
 * is recorded as stopped with the reason; later stages still run. audit-report.ts turns the
 * results into `parry evaluate`'s results.json, marked black-box.
 */
import type { z } from 'zod';
import { check } from '../errors.js';
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
import {
  evasionStage,
  labelsOfRows,
  membershipStage,
  type StageOutcome,
  stealingStage,
} from './audit-stages.js';
import { EndpointRefusal, QueryLimitReached } from './http-classifier.js';

export * from './audit-config.js';

/** Runs the audit; `onStage` hears each stage as it ends. */
export async function runAudit(
  target: AuditTarget,
  data: AuditData,
  config: z.input<typeof auditConfigSchema>,
  onStage?: (r: StageRecord) => void,
): Promise<AuditResults> {
  const c = parseWith('audit', auditConfigSchema, config);
  const started = new Date().toISOString();
  const n = data.test.shape[0];
  check(n === c.n, () => `audit: the test set holds ${n} examples, n is ${c.n}`);
  const plan = planAudit(c.budget, n, c.stages);
  target.limit = c.budget;
  const t0 = performance.now();
  const confidence = new Float32Array(n);
  const predictions = Array.from(await labelsOfRows(target, data.test.x, n, confidence));
  const accuracy = predictions.filter((p, i) => p === data.test.labels[i]).length / n;
  const results: AuditResults = {
    kind: 'endpoint-audit',
    blackBox: true,
    config: c,
    dataset: { name: data.test.name, n, pool: data.train.name },
    clean: {
      accuracy,
      queries: target.queries,
      predictions,
      confidences: Array.from(confidence),
      seconds: (performance.now() - t0) / 1000,
    },
    stages: [],
    queries: 0,
    notes: [],
    started,
    finished: started,
  };
  for (const stage of c.stages) {
    // Each stage draws from its own seed: two stealing methods would otherwise pick the same
    // pool examples, and the second would be answered from the first one's cache.
    const seed = (c.seed + AUDIT_STAGES.indexOf(stage)) >>> 0;
    const record = await runStage(stage, plan[stage], target, data, { ...c, seed }, predictions);
    results.stages.push(record);
    onStage?.(record);
  }
  target.limit = c.budget;
  results.queries = target.queries;
  results.finished = new Date().toISOString();
  return results;
}

type StageBody = (share: number) => Promise<StageOutcome>;

async function runStage(
  stage: AuditStage,
  share: number,
  target: AuditTarget,
  data: AuditData,
  c: AuditConfig,
  clean: readonly number[],
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
    square: (s) => evasionStage('square', s, target, data.test, c, clean),
    hsj: (s) => evasionStage('hsj', s, target, data.test, c, clean),
    membership: (s) => membershipStage('noise', s, target, data, c),
    augmentation: (s) => membershipStage('augmentation', s, target, data, c),
    knockoff: (s) => stealingStage('knockoff', s, target, data, c),
    copycat: (s) => stealingStage('copycat', s, target, data, c),
    jacobian: (s) => stealingStage('jacobian', s, target, data, c),
  };
  target.limit = before + share;
  try {
    const outcome = await bodies[stage](share);
    return record(outcome.metrics === undefined ? 'skipped' : 'done', outcome);
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
