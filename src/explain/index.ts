/** Interpretability: saliency maps (gradient, SmoothGrad, integrated gradients), PNG heatmaps. */
export {
  integratedGradients,
  pngDataUri,
  SALIENCY_METHODS,
  type SaliencyMethod,
  type SaliencyOptions,
  saliency,
  saliencyPng,
} from './saliency.js';
