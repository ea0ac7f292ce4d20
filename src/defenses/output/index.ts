/**
 * Output defences: plain functions on probabilities, `OutputDefense` objects from the registry,
 * and `defendQueries`, which wraps a `QueryClassifier`. A white-box `Classifier` is defended in
 * one call by `defendClassifier` (through `queryClassifierFrom` of src/attacks/evasion, the
 * softmax of its logits), which is re-exported here.
 */
export { queryClassifierFrom } from '../../attacks/evasion/black-box.js';
export { createHighConfidence, highConfidenceProbabilities } from './high-confidence.js';
export { createLabelsOnly, labelsOnly } from './labels-only.js';
export {
  applyOutputDefenses,
  chainPreserves,
  type DefendedQueryClassifier,
  defendClassifier,
  defendQueries,
  type OutputDefense,
  type Preserves,
} from './output-defense.js';
export { createProbabilityNoise, noisyProbabilities } from './probability-noise.js';
export {
  buildOutputDefenses,
  createOutputDefense,
  OUTPUT_DEFENSES,
  type OutputDefenseEntry,
  type OutputDefenseStep,
  outputDefenseNames,
  parseOutputDefenseSpec,
} from './registry.js';
export { createReverseSigmoid, reverseSigmoid } from './reverse-sigmoid.js';
export { createRounding, roundProbabilities } from './rounding.js';
export { createTopK, topKProbabilities } from './top-k.js';
