/** Poisoning attacks (training-set poisons and backdoor triggers) and their registry. */
export { badnets, badnetsSchema, blended, blendedSchema } from './backdoor.js';
export { cleanLabel, cleanLabelSchema } from './clean-label.js';
export {
  collisionObjective,
  featureCollision,
  featureCollisionSchema,
  featureDistance,
} from './feature-collision.js';
export {
  alignmentLoss,
  type ParameterModel,
  parameterGradient,
  parameterModel,
} from './gradient-alignment.js';
export { gradientMatching, gradientMatchingSchema } from './gradient-matching.js';
export {
  adversarialFlip,
  adversarialFlipSchema,
  pairFlip,
  pairFlipSchema,
  randomFlip,
  randomFlipSchema,
} from './label-flipping.js';
export {
  applyTrigger,
  checkManifestMatches,
  manifestAfterRemoval,
  type PoisonManifest,
  type PoisonResult,
  parseManifest,
  readManifest,
  triggeredTestSet,
} from './poison-manifest.js';
export {
  findPoisonAttack,
  POISON_ATTACKS,
  type PoisonEntry,
  type PoisonInput,
  type PoisonRunner,
  poisonAttackNames,
  runPoison,
} from './registry.js';
export type { PoisonContext } from './selection.js';
export type { BlendTrigger, PatchTrigger, Trigger } from './triggers.js';
