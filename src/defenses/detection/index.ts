/** Detection defenses: detectors, their metrics, a classifier that abstains. */
export { type FeatureModel, featureModel, readFeatures } from '../../models/features.js';
export {
  DetectingClassifier,
  type DetectionAccuracy,
  detectionAccuracy,
  scoreForGradient,
} from './detecting-classifier.js';
export { BaseDetector, type Detector, type ScoreGradient } from './detector.js';
export { FeatureSqueezingDetector, type SqueezeConfig } from './feature-squeezing.js';
export {
  type DetectorState,
  isSavable,
  type SavableDetector,
  type StateArray,
} from './fitted-state.js';
export { type KdeConfig, KdeDetector } from './kde.js';
export { type LearnedConfig, LearnedDetector } from './learned.js';
export { type LidConfig, LidDetector, lidMle, lidTensor } from './lid.js';
export { fitLogistic, type LogisticModel, logisticLogit } from './logistic.js';
export {
  type AutoencoderTrainConfig,
  autoencoderFrom,
  type ImageModel,
  jsd,
  MagnetDetector,
  type MagnetMetric,
  trainAutoencoder,
} from './magnet.js';
export { fitTiedGaussians, MahalanobisDetector, minMahalanobis } from './mahalanobis.js';
export { rateAbove, rocAuc, thresholdAtFpr, tprAtFpr } from './metrics.js';
export { classifierHash } from './model-hash.js';
export {
  checkDetectorDir,
  DETECTOR_FILE,
  DETECTOR_FORMAT_VERSION,
  type LoadedDetector,
  loadDetector,
  type SaveDetectorOptions,
  type SavedDetectorFile,
  saveDetector,
} from './persist.js';
export { createDetector, DETECTORS, type DetectorName } from './registry.js';
export { type StripConfig, StripDetector, stripEntropy } from './strip.js';
