export {
  ARCHITECTURES,
  type Architecture,
  type ArchitectureOptions,
  buildArchitecture,
} from './architectures.js';
export type { Classifier, QueryClassifier } from './classifier.js';
export { ENGINE_CHOICES, type EngineChoice } from './engine-choice.js';
export {
  decodeFloat16,
  encodeFloat16,
  float16BitsToFloat32,
  float32ToFloat16Bits,
} from './float16.js';
export {
  type FileHandler,
  fileHandler,
  MODEL_JSON,
  type SaveOptions,
  saveLayersModel,
  WEIGHTS_FILE,
} from './io.js';
export { enginesUsed, type LoadClassifierOptions, loadClassifier } from './load.js';
export { type ParryMetadata, readParryMetadata } from './metadata.js';
export { craftingEngine, releaseCraftingEngine } from './onnx/crafting-engine.js';
export { engineLogits } from './onnx/ort-engine.js';
export {
  type ClassifierInfo,
  type LayerInfo,
  type ModelFormat,
  TfjsClassifier,
  type TfjsClassifierOptions,
} from './tfjs-classifier.js';
