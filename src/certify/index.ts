export {
  type CertifyBoundsResult,
  type CrownConfig,
  type CrownConfigInput,
  certifyCrown,
  certifyIbp,
  crownBounds,
  crownConfigSchema,
  crownMarginBounds,
  ibpBounds,
  ibpMarginBounds,
  type LogitBounds,
  type MarginBounds,
} from '../models/bounds/index.js';
export {
  type CertifyDatasetOptions,
  type CertifyDatasetResult,
  certifyDataset,
  fraction,
} from './bound-certificates.js';
export {
  ABSTAIN,
  type CertifyConfig,
  type CertifyConfigInput,
  type CertifyResult,
  certify,
  certifyConfigSchema,
  type PredictConfig,
  type PredictConfigInput,
  predict,
  predictConfigSchema,
  sampleCounts,
} from './randomized-smoothing.js';
export {
  certifyExample,
  certifySmoothingDataset,
  certifySmoothingDatasetPooled,
  type SmoothingDatasetOptions,
  type SmoothingDatasetResult,
  type SmoothingJob,
  type SmoothingJobResult,
  type SmoothingRow,
} from './smoothing-dataset.js';
export {
  betaQuantile,
  binomialTestPValue,
  clopperPearsonInterval,
  clopperPearsonLower,
  erfc,
  logGamma,
  normalCdf,
  normalQuantile,
  regularizedBeta,
} from './stats.js';
