/** The detectors `parry detect` can build, as an explicit list (also the CLI's help text). */
import type { Detector } from './detector.js';
import { FeatureSqueezingDetector } from './feature-squeezing.js';
import { KdeDetector } from './kde.js';
import { LearnedDetector } from './learned.js';
import { LidDetector } from './lid.js';
import { MagnetDetector } from './magnet.js';
import { MahalanobisDetector } from './mahalanobis.js';

export const DETECTORS = [
  { name: 'squeeze', supervised: false, description: 'feature squeezing (Xu et al. 2018)' },
  {
    name: 'magnet',
    supervised: false,
    description: 'MagNet autoencoder reconstruction error (Meng & Chen 2017)',
  },
  {
    name: 'mahalanobis',
    supervised: false,
    description: 'Mahalanobis distance, tied covariance (Lee et al. 2018)',
  },
  { name: 'lid', supervised: true, description: 'local intrinsic dimensionality (Ma et al. 2018)' },
  {
    name: 'kde',
    supervised: true,
    description: 'kernel density + MC-dropout uncertainty (Feinman et al. 2017)',
  },
  {
    name: 'learned',
    supervised: true,
    description: 'logistic regression on penultimate activations',
  },
] as const;

export type DetectorName = (typeof DETECTORS)[number]['name'];

/** A detector with its default settings (`seed` seeds the noisy negatives and trainers). */
export function createDetector(name: DetectorName, seed = 1): Detector {
  switch (name) {
    case 'squeeze':
      return new FeatureSqueezingDetector();
    case 'magnet':
      return new MagnetDetector(undefined, { train: { seed: seed || 1 } });
    case 'mahalanobis':
      return new MahalanobisDetector();
    case 'lid':
      return new LidDetector({ seed: seed || 1 });
    case 'kde':
      return new KdeDetector({ seed: seed || 1 });
    case 'learned':
      return new LearnedDetector();
  }
}
