/** parry's public API. Call `initBackend()` once before creating any tensor. */

export * from './adaptive/index.js';
export * from './attacks/evasion/index.js';
export * from './attacks/poisoning/index.js';
export * from './attacks/privacy/inversion/index.js';
export * from './attacks/privacy/label-only.js';
export * from './attacks/privacy/membership/index.js';
export * from './attacks/privacy/reference-models.js';
export * from './attacks/privacy/stealing/index.js';
export { ATTACKS, type AttackEntry, type AttackParams, findAttack } from './attacks/registry.js';
export * from './certify/index.js';
export * from './data/index.js';
export * from './defenses/detection/index.js';
export * from './defenses/index.js';
export {
  applyOutputDefenses,
  buildOutputDefenses,
  chainPreserves,
  type DefendedQueryClassifier,
  defendClassifier,
  defendQueries,
  OUTPUT_DEFENSES,
  type OutputDefense,
  parseOutputDefenseSpec,
} from './defenses/output/index.js';
export * from './defenses/privacy/index.js';
export { DEFAULT_BACKEND, initBackend, resolveBackendName } from './engine/backend.js';
export { Rng } from './engine/rng.js';
export { isParryError, ParryError, type ParryErrorCode } from './errors.js';
export {
  type DefenseAttackers,
  type DefenseEvaluation,
  defenseSetup,
  evaluateDefense,
  evaluateDefensePooled,
  type PooledDefense,
} from './evaluate/defense.js';
export { type Predictions, predictDataset } from './evaluate/predictions.js';
export { type PrivacyConfig, privacySchema } from './evaluate/privacy-config.js';
export { type PrivacyResults, privacyEvaluation } from './evaluate/privacy-stage.js';
export {
  type AttackEvaluation,
  evaluateAttack,
  evaluateAttackPooled,
  type PooledTarget,
} from './evaluate/robustness.js';
export * from './explain/index.js';
export * from './models/index.js';
export {
  countCorrect,
  crossEntropy,
  klDivergence,
  margin,
  smoothedCrossEntropy,
} from './objectives/losses.js';
export { type ReportOptions, renderReport } from './report/index.js';
export {
  type BatchProgress,
  type EpochRecord,
  type GradientStep,
  type LossFn,
  standardLoss,
  type TrainConfig,
  type TrainHooks,
  type TrainProgress,
  type TrainResult,
  trainConfigSchema,
  trainModel,
} from './train/loop.js';
