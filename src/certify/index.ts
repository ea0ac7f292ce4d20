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
