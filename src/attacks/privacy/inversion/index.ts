/** Model inversion: MI-Face reconstructions per class, their priors, and their scores. */
export {
  type ClassMeans,
  classMeans,
  type InversionScore,
  scoreInversions,
} from './inversion-scores.js';
export {
  type CostTerms,
  type InversionResult,
  type InversionRun,
  inversionCost,
  inversionGradient,
  type MiFaceConfig,
  type MiFaceOptions,
  miFace,
  miFaceSchema,
  type StopReason,
} from './mi-face.js';
export { l2Prior, totalVariation } from './priors.js';
