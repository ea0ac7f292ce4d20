/**
 * Defences against poisoning. Data inspection (a model and its training set in, flagged examples
 * out): activation clustering, spectral signatures, deep k-NN, loss filtering — in the registry
 * `INSPECTIONS` — and the scoring of a result against a recipe's poisoned indices.
 */
export {
  type ActivationClusteringConfig,
  activationClustering,
  activationClusteringSchema,
  pcaProject,
  silhouette,
} from './activation-clustering.js';
export { classRows, type TrainingFeatures, trainingFeatures } from './class-features.js';
export {
  type FinePruningConfig,
  type FinePruningResult,
  finePrune,
  finePruningSchema,
} from './fine-pruning.js';
export { exampleLosses, freshCopy, layersModelOf } from './fresh-model.js';
export {
  type InspectionResult,
  type InspectionScore,
  scoreInspection,
} from './inspection.js';
export { deepKnn, type KnnConfig, knnSchema, nearestNeighbours } from './knn.js';
export {
  type LossFilterConfig,
  lossFiltering,
  lossFilterSchema,
  type RetrainContext,
} from './loss-filter.js';
export {
  anomalyIndices,
  type NeuralCleanseConfig,
  type NeuralCleanseResult,
  neuralCleanse,
  neuralCleanseSchema,
  type ReversedTrigger,
  reverseTrigger,
  stamp,
  unlearn,
  unlearningSet,
  unlearnSchema,
} from './neural-cleanse.js';
export {
  INSPECTIONS,
  type InspectionEntry,
  type InspectionRunner,
  inspectionNames,
  runInspection,
  runScan,
  SCANS,
  type ScanEntry,
  type ScanResult,
  type ScanRunner,
  scanNames,
} from './registry.js';
export {
  type SpectralConfig,
  spectralConfigSchema,
  spectralScores,
  spectralSignatures,
  topEigenvector,
} from './spectral.js';
