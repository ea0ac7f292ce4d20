export {
  type ApgdConfig,
  type ApgdConfigInput,
  type ApgdObjective,
  type ApgdResult,
  type ApgdState,
  apgd,
  apgdCheckpoints,
  apgdConfigSchema,
  apgdStep,
  createApgd,
  parseApgdConfig,
} from './apgd.js';
export {
  AUTO_MEMBERS,
  type AutoConfig,
  type AutoConfigInput,
  type AutoMember,
  type AutoOptions,
  type AutoResult,
  autoAttack,
  autoConfigSchema,
  createAuto,
} from './auto.js';
export {
  type CountingQueryClassifier,
  decisionClassifierFrom,
  queryClassifierFrom,
  queryLabels,
} from './black-box.js';

export {
  type CarliniWagnerConfig,
  type CarliniWagnerConfigInput,
  type CarliniWagnerOptions,
  type CarliniWagnerResult,
  type CarliniWagnerState,
  carliniWagner,
  carliniWagnerConfigSchema,
  carliniWagnerStep,
  createCarliniWagner,
} from './carlini-wagner.js';
export {
  createDeepFool,
  type DeepFoolConfig,
  type DeepFoolConfigInput,
  type DeepFoolOptions,
  type DeepFoolResult,
  deepFool,
  deepFoolCandidates,
  deepFoolConfigSchema,
  deepFoolStep,
} from './deepfool.js';
export { dlrLoss, dlrTargetedLoss } from './dlr.js';
export {
  createFgsm,
  type FgsmConfig,
  type FgsmConfigInput,
  type FgsmResult,
  fgsm,
  fgsmConfigSchema,
} from './fgsm.js';
export {
  type AscentSetting,
  ascentStep,
  type Candidate,
  finishAttack,
  iterateSteps,
  type LoopResult,
  type LoopSettings,
  type Objective,
  objectiveGradient,
  type Run,
  runGradientLoop,
  type StepRule,
} from './gradient-loop.js';
export {
  createHopSkipJump,
  type HopSkipJumpConfig,
  type HopSkipJumpConfigInput,
  type HopSkipJumpOptions,
  type HopSkipJumpResult,
  hopSkipJump,
  hopSkipJumpConfigSchema,
} from './hop-skip-jump.js';
export {
  createMim,
  type MimConfig,
  type MimConfigInput,
  type MimResult,
  type MimState,
  mim,
  mimConfigSchema,
  mimStep,
  parseMimConfig,
} from './mim.js';
export { type AttackLoss, attackObjective, attackSuccess } from './objective.js';
export {
  createPgd,
  type PgdConfig,
  type PgdConfigInput,
  type PgdResult,
  parsePgdConfig,
  pgd,
  pgdConfigSchema,
  pgdStep,
} from './pgd.js';
export {
  clipToBounds,
  enforceThreatModel,
  NORMS,
  type Norm,
  normalizeGradient,
  perturbationNorms,
  projectToBall,
  randomStart,
} from './projection.js';
export {
  createSquare,
  type SquareConfig,
  type SquareConfigInput,
  type SquareOptions,
  type SquareResult,
  square,
  squareConfigSchema,
  squareP,
} from './square.js';
export {
  applyUniversal,
  createUap,
  foolingRate,
  type UapConfig,
  type UapConfigInput,
  type UapOptions,
  type UapResult,
  uapConfigSchema,
  universalPerturbation,
} from './uap.js';
