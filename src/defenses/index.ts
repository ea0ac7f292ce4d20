/** Defenses. Robust training plugs into `trainModel` as a `LossFn`. */

export * from './poisoning/index.js';
export * from './preprocess/index.js';
export {
  type AttackSetting,
  CostMeter,
  constantSetting,
  craftKl,
  craftPgd,
  type RobustTraining,
  type SettingAt,
  threatSchema,
  trainingClassifier,
} from './training/adversarial.js';
export { BestCheckpoint } from './training/early-stopping.js';
export {
  createFastTraining,
  detectCatastrophicOverfitting,
  type FastTrainingConfig,
  fgsmRandomStart,
  type OverfittingVerdict,
  type RobustCheck,
} from './training/fast-at.js';
export {
  createIbpLoss,
  type IbpSchedule,
  type IbpTrainingConfig,
  type IbpTrainingConfigInput,
  ibpLoss,
  ibpSchedule,
  ibpTrainingConfigSchema,
} from './training/ibp.js';
export {
  createInputGradientRegularizer,
  type InputGradientConfig,
  inputGradientLoss,
  squaredNorms,
} from './training/input-gradient.js';
export {
  createJacobianRegularizer,
  type JacobianConfig,
  jacobianPenalty,
} from './training/jacobian.js';
export { createMart, type MartConfig, martLoss } from './training/mart.js';
export { createPgdTraining, type PgdTrainingConfig } from './training/pgd-at.js';
export {
  adaptEps,
  createSchedule,
  type EpsSchedule,
  type ScheduleConfig,
  type ScheduleKind,
  settingFor,
} from './training/schedule.js';
export {
  checkTwiceDifferentiable,
  registerSecondOrderGradients,
} from './training/second-order.js';
export { createTrades, type TradesConfig, tradesLoss } from './training/trades.js';
export {
  type HeldOutAccuracy,
  type HeldOutAttack,
  type HeldOutConfig,
  heldOutAccuracy,
} from './training/validation.js';
