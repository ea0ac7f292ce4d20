export { type CopycatConfig, copycat, copycatSchema } from './copycat.js';
export {
  type JacobianAugmentationConfig,
  jacobianAugmentation,
  jacobianSchema,
  jacobianStep,
  lambdaAt,
} from './jacobian-augmentation.js';
export { type KnockoffConfig, knockoff, knockoffSchema, randomTransfer } from './knockoff.js';
export {
  certaintyReward,
  diversityReward,
  GradientBandit,
  KnockoffRewards,
  lossReward,
  PROB_FLOOR,
  REWARD_KINDS,
  type RewardKind,
} from './knockoff-rewards.js';
export {
  answerTargets,
  askVictim,
  type BudgetedVictim,
  checkBudget,
  isOneHot,
  withBudget,
} from './query-budget.js';
export {
  parseStealingOptions,
  runStealing,
  STEALING_ATTACKS,
  type StealingEntry,
  type StealingResult,
  type StealRunner,
  stealingAttackNames,
  stealingCurve,
} from './registry.js';
export {
  scoreThief,
  type ThiefScores,
  type TransferConfig,
  transferSchema,
} from './stealing-metrics.js';
export {
  architectureThief,
  fitThief,
  softTargetLoss,
  type ThiefBuilder,
  type TransferSet,
  thiefClassifier,
} from './thief.js';
export {
  budgetSchema,
  type StealContext,
  type StolenModel,
  stealingShape,
  type TargetKind,
} from './transfer.js';
