/**
 * The endpoint audit's config, budget plan and result records (the audit itself: endpoint-audit.ts;
 * its stages: audit-stages.ts; its results.json: audit-report.ts).
 */
import { z } from 'zod';
import type { StealingResult } from '../attacks/privacy/stealing/registry.js';
import type { Dataset } from '../data/dataset.js';
import { check } from '../errors.js';
import type { AttackRun } from '../evaluate/cells.js';
import type { PrivacyResults } from '../evaluate/privacy-stage.js';
import { ARCHITECTURES } from '../models/architectures.js';
import type { QueryClassifier } from '../models/classifier.js';

export const AUDIT_STAGES = [
  'square',
  'hsj',
  'membership',
  'augmentation',
  'knockoff',
  'copycat',
  'jacobian',
] as const;
export type AuditStage = (typeof AUDIT_STAGES)[number];

/** Relative shares of the budget left after the clean pass. */
const WEIGHTS: Record<AuditStage, number> = {
  square: 2,
  hsj: 2,
  membership: 1,
  augmentation: 1,
  knockoff: 2.5,
  copycat: 2.5,
  jacobian: 2.5,
};

export const auditConfigSchema = z.strictObject({
  n: z.number().int().min(1),
  budget: z.number().int().min(1),
  eps: z.number().min(0).default(0.1),
  norm: z.enum(['linf', 'l2']).default('linf'),
  stages: z
    .array(z.enum(AUDIT_STAGES))
    .min(1)
    .default([...AUDIT_STAGES]),
  seed: z.number().int().min(0).max(0xffffffff).default(0),
  thiefArch: z.enum(ARCHITECTURES.map((a) => a.name) as [string, ...string[]]).default('cnn-small'),
  thiefEpochs: z.number().int().min(1).default(10),
  /** Membership: std of the Gaussian noise. */
  sigma: z.number().positive().default(0.1),
});
export type AuditConfig = z.output<typeof auditConfigSchema>;

/** The endpoint as the audit needs it: answers, and a running count with a refusable limit. */
export interface AuditTarget extends QueryClassifier {
  readonly queries: number;
  limit: number;
  /** What the endpoint answers, once known. */
  readonly outputs?: 'scores' | 'labels';
}

/** One label-only membership signal, as the privacy section of results.json holds it. */
export type LabelOnlyRow = PrivacyResults['labelOnly'][number];

export interface StageRecord {
  stage: AuditStage;
  /** The stage's seed: the audit's seed plus the stage's index in AUDIT_STAGES. */
  seed: number;
  status: 'done' | 'skipped' | 'stopped';
  /** Queries the stage may spend, and spent. */
  share: number;
  queries: number;
  seconds: number;
  note?: string;
  /** Set when the endpoint refused: its status and error code. */
  refusal?: { status: number; code: string };
  /** The stage's headline numbers (the log line, `--json`). */
  metrics?: Record<string, number | null | string>;
  /** square, hsj: per test example, the record `parry evaluate` keeps of an attack run. */
  run?: AttackRun & { params: Record<string, unknown> };
  /** membership, augmentation: the signal's scores judged against the assumed membership. */
  labelOnly?: LabelOnlyRow;
  /** membership, augmentation: the endpoint's accuracy on the assumed members. */
  memberAccuracy?: number;
  /** knockoff, copycat, jacobian: the stolen model, scored. */
  stealing?: StealingResult;
}

export interface AuditResults {
  kind: 'endpoint-audit';
  /** Always true: nothing but the endpoint's answers was used. */
  blackBox: true;
  config: AuditConfig;
  dataset: { name: string; n: number; pool: string };
  /** Predictions: -1 where the endpoint abstained (answered the uniform row); confidences: top scores. */
  clean: {
    accuracy: number;
    queries: number;
    predictions: number[];
    confidences: number[];
    seconds: number;
  };
  stages: StageRecord[];
  queries: number;
  notes: string[];
  /** ISO timestamps. */
  started: string;
  finished: string;
}

/** Each stage's share of the budget: `n` for the clean pass, the rest split by weight. */
export function planAudit(
  budget: number,
  n: number,
  stages: readonly AuditStage[],
): Record<AuditStage, number> & { clean: number } {
  check(
    budget >= n,
    () => `audit: the budget (${budget}) must cover the clean pass over n = ${n} examples`,
    'BAD_OPTION',
  );
  const rest = budget - n;
  const total = stages.reduce((s, st) => s + WEIGHTS[st], 0);
  const out = { clean: n } as Record<AuditStage, number> & { clean: number };
  for (const st of AUDIT_STAGES)
    out[st] = stages.includes(st) ? Math.floor((rest * WEIGHTS[st]) / total) : 0;
  return out;
}

export interface AuditData {
  /** The first n test examples: accuracy, attacks, non-members, thief scoring. */
  test: Dataset;
  /** The training split: the stealing pool and (its first n) assumed members. */
  train: Dataset;
}
