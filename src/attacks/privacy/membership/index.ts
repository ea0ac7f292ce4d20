/** Membership inference from model outputs: signals, attacks, metrics and their registry. */
export { fitMlp, type Mlp, type MlpConfig, mlpLogits } from './attack-model.js';
export { normalLogPdf, normalLogSurvival } from './gaussian-fit.js';
export {
  fitSide,
  type GaussianFits,
  type LiraConfig,
  lira,
  liraSchema,
  liraScores,
} from './lira.js';
export {
  checkMembershipInput,
  type MembershipInput,
  type MembershipScores,
  type PopulationInput,
  type QueryLogits,
} from './membership.js';
export {
  evaluateMembership,
  MEMBERSHIP_ATTACKS,
  type MembershipEntry,
  type MembershipNeed,
  type MembershipResult,
  type MembershipRunner,
  membershipAttackNames,
  membershipLabel,
  runMembership,
} from './registry.js';
export {
  logRatios,
  type RmiaConfig,
  rmia,
  rmiaSchema,
  rmiaScoresFromRatios,
  tuneRmiaA,
} from './rmia.js';
export {
  balancedAccuracyAt,
  balancedAccuracyOf,
  bestBalancedAccuracy,
  type CompactRoc,
  compactRoc,
  curveAuc,
  curveTprAtFpr,
  LOW_FPRS,
  type LowFpr,
  type MembershipMetrics,
  membershipMetrics,
  type RocCurve,
  rocCurve,
} from './roc.js';
export { type ShadowConfig, shadowAttack, shadowFeatures, shadowSchema } from './shadow.js';
export {
  computeSignal,
  confidenceSignal,
  HIGHER_IS_MEMBER,
  logitScaledConfidence,
  lossSignal,
  modifiedEntropySignal,
  SIGNALS,
  type SignalName,
  trueClassLogProbability,
} from './signals.js';
export {
  applyThresholds,
  calibrateThresholds,
  chooseThreshold,
  type ThresholdConfig,
  type ThresholdReference,
  thresholdAttack,
  thresholdSchema,
} from './threshold.js';
