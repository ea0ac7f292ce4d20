/** Preprocessing defenses: one file per technique, composed by DefendedClassifier. */
export {
  buildDenoiser,
  createAutoencoder,
  type DenoiserEpoch,
  type DenoiserTrainingConfig,
  denoiserTrainingSchema,
  loadDenoiser,
  reconstruct,
  saveDenoiser,
  trainDenoiser,
} from './autoencoder.js';
export { createBitDepth } from './bit-depth.js';
export { createCropResize } from './crop-resize.js';
export { DefendedClassifier, type DefendedOptions } from './defended-classifier.js';
export { createJpeg, jpegEncoderKind, jpegRoundTrip } from './jpeg.js';
export { createMedian, medianFilter } from './median.js';
export { createNoise } from './noise.js';
export { fromValues, type Preprocessor, reflectPad, straightThrough } from './preprocessor.js';
export { createResizePad } from './resize-pad.js';
export { createSmoothing, smoothingKernel } from './spatial-smoothing.js';
export {
  buildPreprocessors,
  checkPreprocessSpec,
  PREPROCESSORS,
  type PreprocessStep,
  parsePreprocessSpec,
} from './spec.js';
export { createTv, tvDenoise } from './tv-minimization.js';
