/**
 * The endpoint audit's results in `parry evaluate`'s results.json format, so that one report
 * (src/report) reads both: the endpoint is the one target, each evasion stage an attack cell
 * (per-example outcomes, the same robustness rule as evaluate's cells), the worst case over them,
 * fairness per class; the label-only signals and the stolen models in the privacy section; and a
 * top-level `access` that marks the whole as black-box, with the endpoint (URL without
 * credentials), the budget and each stage's share, spending and fate.
 *
 * What a black-box audit cannot measure stays empty rather than guessed: no certificates, no
 * honesty checks (they compare with white-box attacks), no gallery. The membership block fills
 * evaluate's shape with what is true of an audit: no model was trained (no reference models, 0
 * epochs), the candidates are the assumed members and the test examples, and the "target"
 * accuracies are the endpoint's on each group.
 */
import type { Dataset } from '../data/dataset.js';
import { cellOf, worstCase } from '../evaluate/cells.js';
import { fairness } from '../evaluate/fairness.js';
import { type PrivacyConfig, privacySchema } from '../evaluate/privacy-config.js';
import type { PrivacyResults, StealingRow } from '../evaluate/privacy-stage.js';
import { type AttackCell, type EvaluationResults, RESULTS_VERSION } from '../evaluate/results.js';
import { type BlackBoxAccess, describeGuards } from '../report/access-section.js';
import type { AuditResults, StageRecord } from './audit-config.js';

/** Facts about the endpoint that the audit's record alone does not hold. */
export interface AuditEndpoint {
  /** The URL without user or password. */
  url: string;
  outputs?: 'scores' | 'labels';
  adapter?: string | null;
  /** parry's GET /v1/model guard summary, when the endpoint is a parry service. */
  guards?: Record<string, unknown>;
  classNames?: string[];
  requests: number;
  waitedSeconds: number;
  abstentions: number;
}

/** results.json of an audit: evaluate's results with the black-box `access`. */
export type AuditedResults = EvaluationResults & { access: BlackBoxAccess };

function attackCells(r: AuditResults, labels: ArrayLike<number>): AttackCell[] {
  return r.stages.flatMap((s) =>
    s.run
      ? [
          cellOf(s.run, labels, {
            attack: s.stage,
            kind: s.stage,
            norm: r.config.norm,
            eps: r.config.eps,
            params: s.run.params,
            // HopSkipJump ran capped to the ball (see audit-stages.ts).
            minimumNorm: false,
            targeted: false,
          }),
        ]
      : [],
  );
}

function membershipBlock(r: AuditResults, stages: StageRecord[]): PrivacyResults | null {
  const rows = stages.flatMap((s) => (s.labelOnly ? [s.labelOnly] : []));
  const first = stages.find((s) => s.memberAccuracy !== undefined);
  if (rows.length === 0 || first === undefined) return null;
  const candidates = rows[0].candidates;
  const seed = r.config.seed;
  // Evaluate's defaults for whatever an audit does not set, then what is true of an audit.
  const defaults = privacySchema.parse({ pool: Math.max(4, candidates), population: 0, seed });
  const config: PrivacyConfig = {
    ...defaults,
    pool: candidates,
    // Nothing was trained: the endpoint is the target and there are no reference models.
    models: { ...defaults.models, referenceModels: 0, arch: 'none', epochs: 0, seed },
    queries: 'none',
    attacks: [],
    outputs: ['none'],
    labelOnly: stages.flatMap((s): PrivacyConfig['labelOnly'] => {
      const o = s.labelOnly?.options;
      if (o === undefined) return [];
      return s.stage === 'membership'
        ? [
            {
              signal: 'noise',
              params: { sigma: Number(o.sigma), samples: Number(o.samples), seed: Number(o.seed) },
              references: 0,
            },
          ]
        : [
            {
              signal: 'augmentation',
              params: { queries: o.queries as 'flip' | 'flip-shift' },
              references: 0,
            },
          ];
    }),
  };
  return {
    config,
    dataset: r.dataset.pool,
    pool: candidates,
    population: 0,
    queries: 0,
    target: {
      trainAccuracy: first.memberAccuracy!,
      testAccuracy: r.clean.accuracy,
      members: candidates - r.dataset.n,
      trainSeconds: 0,
      training: {},
    },
    referenceSeconds: [],
    outputs: [],
    labelOnly: rows,
    seconds: stages.reduce((a, s) => a + (s.labelOnly ? s.seconds : 0), 0),
  };
}

/** The audit `r` of `test` (its first n examples) against `endpoint`, as results.json. */
export function auditResults(
  r: AuditResults,
  test: Dataset,
  endpoint: AuditEndpoint,
): AuditedResults {
  const n = r.dataset.n;
  const labels = Array.from(test.labels.subarray(0, n));
  const classNames =
    endpoint.classNames ??
    test.classNames ??
    Array.from({ length: test.numClasses }, (_, i) => String(i));
  const cells = attackCells(r, labels);
  const worst = worstCase(labels, r.clean.predictions, cells, { [r.config.norm]: [r.config.eps] });
  const evasion = r.stages.filter((s) => s.run);
  const stealing: StealingRow[] = r.stages.flatMap((s) =>
    s.stealing
      ? [
          {
            model: endpoint.url,
            method: s.stage,
            output: endpoint.outputs ?? 'unknown',
            curve: [s.stealing],
          },
        ]
      : [],
  );
  const membership = membershipBlock(r, r.stages);
  const stageNotes = r.stages.flatMap((s) =>
    s.note && !s.labelOnly ? [`${s.stage} ${s.status}: ${s.note}`] : [],
  );
  return {
    version: RESULTS_VERSION,
    started: r.started,
    finished: r.finished,
    config: { command: 'audit', ...r.config, dataset: r.dataset.name, pool: r.dataset.pool },
    dataset: {
      name: r.dataset.name,
      n,
      classNames,
      inputShape: test.shape.slice(1),
      labels,
      groups: null,
    },
    targets: [
      {
        id: endpoint.url,
        model: endpoint.url,
        defense: describeGuards(endpoint.guards ?? null),
        trainedAgainst: 'unknown',
        engine: 'endpoint',
        clean: {
          accuracy: r.clean.accuracy,
          predictions: r.clean.predictions,
          confidences: r.clean.confidences,
          seconds: r.clean.seconds,
        },
        attacks: cells,
        worstCase: worst,
        certified: [],
        fairness: fairness(labels, classNames, null, r.clean.predictions, worst),
        honesty: [],
        gallery: [],
        cost: {
          seconds: r.clean.seconds + evasion.reduce((a, s) => a + s.seconds, 0),
          gradientEvaluations: 0,
          queries: r.clean.queries + evasion.reduce((a, s) => a + s.queries, 0),
        },
      },
    ],
    ...(membership || stealing.length > 0
      ? { privacy: { dataset: r.dataset.pool, membership, stealing, inversion: [] } }
      : {}),
    notes: [
      ...r.notes,
      ...stageNotes,
      ...(membership ? [membership.labelOnly[0].warnings[0]] : []),
      'black-box: no honesty checks ran (they compare with white-box attacks on the model itself)',
    ],
    access: {
      mode: 'black-box',
      url: endpoint.url,
      outputs: endpoint.outputs ?? null,
      adapter: endpoint.adapter ?? null,
      guards: endpoint.guards ?? null,
      budget: r.config.budget,
      queries: r.queries,
      requests: endpoint.requests,
      waitedSeconds: endpoint.waitedSeconds,
      abstentions: endpoint.abstentions,
      stages: r.stages.map((s) => ({
        stage: s.stage,
        status: s.status,
        seed: s.seed,
        share: s.share,
        queries: s.queries,
        seconds: s.seconds,
        note: s.note ?? null,
        refusal: s.refusal ?? null,
      })),
    },
  };
}
