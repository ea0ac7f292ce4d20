export {
  createFgsm,
  type FgsmConfig,
  type FgsmConfigInput,
  type FgsmOptions,
  fgsm,
  fgsmConfigSchema,
} from './fgsm.js';
export { type AttackLoss, attackObjective, attackSuccess } from './objective.js';
export {
  createPgd,
  type PgdConfig,
  type PgdConfigInput,
  type PgdOptions,
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
