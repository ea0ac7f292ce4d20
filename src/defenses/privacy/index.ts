/**
 * Differentially private training: DP-SGD (Abadi et al. 2016) with exact per-example clipping
 * (a fast path for Dense and Conv2D layers, a batch-of-one reference path for the rest), Poisson
 * sampling, and a Rényi-DP accountant for the sampled Gaussian mechanism (Mironov 2017; Mironov,
 * Talwar & Zhang 2019) with the classic and the Balle et al. 2020 conversions to (ε, δ).
 */
export {
  type ClipOptions,
  type ClippedSum,
  type ClippingPath,
  type ClippingPlan,
  clippedGradientSum,
  clippingPlan,
  type LayerRule,
  refuseCrossExampleLayers,
} from './clipping.js';
export {
  createDpSgd,
  type DpSgd,
  type DpSgdConfig,
  type DpSgdRecord,
  dpSgdSchema,
  type PrivateGradientOptions,
  type PrivateGradients,
  poissonSample,
  privateGradients,
} from './dp-sgd.js';
export {
  DEFAULT_ORDERS,
  type EpsilonInput,
  type EpsilonResult,
  epsilonFor,
  epsilonSchema,
  logErfc,
  rdpSampledGaussian,
  stepsForEpochs,
} from './rdp-accountant.js';
