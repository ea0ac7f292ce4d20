/** Bound propagation certificates for L∞ balls: IBP and CROWN. */
export {
  type CrownConfig,
  type CrownConfigInput,
  certifyCrown,
  crownBounds,
  crownConfigSchema,
  crownMarginBounds,
} from './crown.js';
export {
  type CertifyDatasetOptions,
  type CertifyDatasetResult,
  certifyDataset,
  fraction,
} from './dataset.js';
export {
  type CertifyBoundsResult,
  certifyIbp,
  ibpBounds,
  ibpMarginBounds,
  type LogitBounds,
  type MarginBounds,
} from './ibp.js';
