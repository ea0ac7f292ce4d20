/** Bound propagation through a model's layer graph for L∞ balls: IBP and CROWN (certify/ builds certificates over data sets from them; defenses/training/ibp.ts trains with them). */
export {
  type CrownConfig,
  type CrownConfigInput,
  certifyCrown,
  crownBounds,
  crownConfigSchema,
  crownMarginBounds,
} from './crown.js';
export {
  type CertifyBoundsResult,
  certifyIbp,
  ibpBounds,
  ibpMarginBounds,
  type LogitBounds,
  type MarginBounds,
} from './interval.js';
