/** Adaptive attacks: wrappers that make any gradient attack see through a defense. */
export { BpdaClassifier, preprocessAttacker } from './bpda.js';
export { EotClassifier, type EotConfig, eotConfigSchema } from './eot.js';
