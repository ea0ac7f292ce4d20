/** Defences against poisoning: data inspection (spectral signatures so far) and its scoring. */
export {
  type InspectionResult,
  type InspectionScore,
  scoreInspection,
} from './inspection.js';
export {
  type SpectralConfig,
  spectralConfigSchema,
  spectralScores,
  spectralSignatures,
  topEigenvector,
} from './spectral.js';
