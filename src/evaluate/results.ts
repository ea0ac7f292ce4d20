/**
 * The shape of `results.json`, written by `parry evaluate` and read by the HTML report. Plain
 * JSON: numbers, strings, arrays; per-example arrays so that worst cases, fairness and honesty
 * checks can be recomputed from the file alone. `null` stands for "not measured" (never NaN).
 */

import type { Norm } from '../objectives/threat-model.js';
import type { FailedCell } from './partial.js';
import type { PrivacySectionResults } from './privacy-stage.js';

export type { Norm } from '../objectives/threat-model.js';
export type { FailedCell } from './partial.js';

export const RESULTS_VERSION = 1;

export interface EvaluationResults {
  version: typeof RESULTS_VERSION;
  /** ISO timestamps. */
  started: string;
  finished: string | null;
  /** The validated config, as run (defaults filled in). */
  config: Record<string, unknown>;
  dataset: {
    name: string;
    n: number;
    /** Class names, index = label. */
    classNames: string[];
    /** `[h, w, c]`. */
    inputShape: number[];
    /** Per example: its label. */
    labels: number[];
    /** Per example: its group name, when the config defines groups. */
    groups: string[] | null;
  };
  targets: TargetResults[];
  /** The poisoning section (recipe × defence grid), when the config has one. */
  poisoning?: PoisoningResults | null;
  /** The privacy section (membership inference, stealing, inversion), when the config has one. */
  privacy?: PrivacySectionResults | null;
  /** Warnings gathered while running (e.g. a certifier that does not apply), shown in the report. */
  notes: string[];
  /**
   * Cells left out because a job of theirs failed on the job queue after its attempts (or a
   * worker refused it); present only when some did. A resumed run computes them again.
   */
  failed?: FailedCell[];
  /**
   * How the numbers were obtained when only an endpoint's answers were used (`parry audit`);
   * absent for `parry evaluate`.
   */
  access?: BlackBoxAccess | null;
}

/** One model, optionally wrapped in a defense: a row of the headline table. */
export interface TargetResults {
  /** `model` or `model + defense`. */
  id: string;
  model: string;
  defense: string | null;
  /** What the model was trained against (`none`, `pgd-at linf 0.1`, …), for the generalisation matrix. */
  trainedAgainst: string;
  /** What ran the model's logits and gradients: 'ort' (ONNX Runtime) or 'tfjs'. */
  engine: string;
  clean: {
    accuracy: number;
    /** Per example: predicted class (-1 = abstained/rejected). */
    predictions: number[];
    /** Per example: softmax confidence of the prediction. */
    confidences: number[];
    seconds: number;
  };
  /** One cell per attack × norm × eps. */
  attacks: AttackCell[];
  /** Per norm and eps: the per-example worst case over every attack at that norm and eps. */
  worstCase: WorstCaseCell[];
  certified: CertifiedResult[];
  fairness: FairnessResult;
  honesty: HonestyCheck[];
  gallery: GalleryItem[];
  cost: { seconds: number; gradientEvaluations: number; queries: number };
}

export interface AttackCell {
  /** The attack's id in the config (defaults to its registry name). */
  attack: string;
  /** Registry name. */
  kind: string;
  norm: Norm;
  eps: number;
  /** Parameters as run. */
  params: Record<string, unknown>;
  whiteBox: boolean;
  robustAccuracy: number;
  attackSuccessRate: number;
  meanPerturbation: number | null;
  medianPerturbation: number | null;
  /** Per example: 1 = classified correctly after the attack, 0 = not. */
  robust: number[];
  /** Per example: the adversarial prediction. */
  adversarial: number[];
  seconds: number;
  gradientEvaluations: number;
  queries: number;
}

export interface WorstCaseCell {
  norm: Norm;
  eps: number;
  robustAccuracy: number;
  robust: number[];
  /** Per example: the attack that broke it first in config order, 'clean', or null (robust). */
  brokenBy: (string | null)[];
}

export interface CertifiedResult {
  method: 'ibp' | 'crown' | 'smoothing';
  norm: Norm;
  /** Certified accuracy at each radius (ibp/crown: the L∞ eps; smoothing: L2 radius). */
  curve: { radius: number; accuracy: number }[];
  /** Per example: certified radius (smoothing) or the largest certified eps of the grid (bounds); 0 = not certified. */
  radii: number[];
  abstainRate: number | null;
  seconds: number;
  params: Record<string, unknown>;
}

export interface GroupStat {
  group: string;
  n: number;
  cleanAccuracy: number;
  /** Worst-case robust accuracy at each eps of each norm: key `${norm}:${eps}`. */
  robustAccuracy: Record<string, number>;
}

export interface FairnessResult {
  perClass: GroupStat[];
  perGroup: GroupStat[] | null;
  /** For classes and groups (when defined): largest gap and worst/best ratio, clean and per `${norm}:${eps}`. */
  summary: {
    over: 'class' | 'group';
    key: string;
    gap: number;
    ratio: number | null;
    worst: string;
    best: string;
  }[];
}

export interface HonestyCheck {
  id:
    | 'unbounded-eps'
    | 'monotone-eps'
    | 'more-steps'
    | 'black-vs-white'
    | 'random-noise'
    | 'gradients';
  title: string;
  status: 'pass' | 'warn' | 'skip';
  /** One sentence with the numbers that decided the status. */
  detail: string;
  values: Record<string, number | string | null>;
}

export interface GalleryItem {
  attack: string;
  norm: Norm;
  eps: number;
  index: number;
  label: number;
  cleanPrediction: number;
  cleanConfidence: number;
  adversarialPrediction: number;
  adversarialConfidence: number;
  /** PNG data URIs. */
  clean: string;
  adversarial: string;
  perturbation: string;
  /** Amplification of the perturbation panel. */
  amplification: number;
  /** Saliency maps (PNG data URIs) by method, for the clean and the adversarial input. */
  saliency: { method: string; clean: string; adversarial: string }[];
}

/** The poisoning section's numbers (src/evaluate/poisoning.ts). */
export interface Measured {
  cleanAccuracy: number;
  /** Backdoors: share of the triggered test examples classified as the target; else null. */
  asr: number | null;
}

export interface PoisonDefenseResult {
  method: string;
  params: Record<string, unknown>;
  /** Data inspections, scored against the recipe's poisoned indices. */
  detection?: {
    flagged: number;
    precision: number;
    recall: number;
    falsePositiveRate: number;
    auc: number;
    /** ROC curve of the suspicion scores: [fpr, tpr] points from (0, 0) to (1, 1). */
    roc: [number, number][];
  };
  /** Neural Cleanse: flagged classes, per-class norms and anomaly indices, trigger images. */
  scan?: {
    flaggedClasses: number[];
    perClass: { class: number; l1: number; anomalyIndex: number; flagged: boolean }[];
    /** mask⊙pattern per class as PNG data URIs. */
    triggers: string[];
  };
  /**
   * STRIP at inference (backdoors; null otherwise): triggered test inputs accepted and clean
   * test inputs rejected at a threshold set for `falseRejectionTarget` on held-out clean data.
   */
  input?: {
    detector: string;
    falseRejectionTarget: number;
    falseAcceptance: number;
    falseRejection: number;
  } | null;
  /** Fine-pruning: channels pruned of the layer. */
  pruned?: { layer: string; pruned: number; channels: number };
  /** Why the defence did not run (it does not apply to the architecture), when it did not. */
  skipped?: string;
  /** The model after the defence (retrained, unlearned or pruned), measured; null when none. */
  after: Measured | null;
  seconds: number;
}

export interface PoisonRecipeResult {
  id: string;
  attack: string;
  params: Record<string, unknown>;
  poisoned: number;
  examples: number;
  labelsChanged: boolean;
  targetClass: number | null;
  poisonedModel: Measured;
  defenses: PoisonDefenseResult[];
  /** Deep Partition Aggregation on the poisoned set, when configured. */
  dpa?: DpaSummary;
  seconds: number;
}

export interface PoisoningResults {
  dataset: string;
  /** How every model of the section was trained. */
  train: { arch: string; epochs: number; batchSize: number; lr: number; seed: number };
  testExamples: number;
  reference: Measured;
  recipes: PoisonRecipeResult[];
}

/** DPA's clean accuracy and certified curve on the test examples. */
export interface DpaSummary {
  k: number;
  accuracy: number;
  /** Median certified poison size: the largest with certified accuracy ≥ 50% (−1 below). */
  medianCertified: number;
  /** Share correct and certified against each poison size 0, 1, …. */
  curve: { size: number; accuracy: number }[];
}

/** One stage of an audit: its share of the budget and what became of it. */
export interface AccessStage {
  stage: string;
  status: 'done' | 'skipped' | 'stopped';
  seed: number;
  /** Queries the stage could spend, and spent. */
  share: number;
  queries: number;
  seconds: number;
  /** Why it was skipped or stopped, or what its numbers assume. */
  note: string | null;
  /** The endpoint's refusal that stopped it: HTTP status and error code. */
  refusal: { status: number; code: string } | null;
}

/** How the numbers of results.json were obtained when only an endpoint's answers were used. */
export interface BlackBoxAccess {
  mode: 'black-box';
  /** The endpoint's URL, without user or password. */
  url: string;
  /** What the endpoint answered: rows of scores, or labels only (null: no answer was read). */
  outputs: 'scores' | 'labels' | null;
  /** The adapter file, when the endpoint is not a parry service. */
  adapter: string | null;
  /** The guards the endpoint reports (parry's GET /v1/model); null when it reports none. */
  guards: Record<string, unknown> | null;
  /** Examples the audit could send, and sent (cached repeats are free). */
  budget: number;
  queries: number;
  requests: number;
  /** Seconds spent waiting out Retry-After. */
  waitedSeconds: number;
  /** Answers that were abstentions. */
  abstentions: number;
  stages: AccessStage[];
}
