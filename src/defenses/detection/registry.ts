/**
 * The detectors `parry detect` and the evaluate config can build, as an explicit list in the
 * registry shape every family shares (also the CLI's help text): a strict schema of the options a
 * detector reads (its seed), what it needs from the model and the data, and `createDetector`.
 */
import { z } from 'zod';
import { type Capability, parseEntryOptions, type RegistryEntry } from '../../options.js';
import type { Detector } from './detector.js';
import { FeatureSqueezingDetector } from './feature-squeezing.js';
import { KdeDetector } from './kde.js';
import { LearnedDetector } from './learned.js';
import { LidDetector } from './lid.js';
import { MagnetDetector } from './magnet.js';
import { MahalanobisDetector } from './mahalanobis.js';
import { StripDetector } from './strip.js';

/** Every detector reads only its seed (noisy negatives, trainers); the rest are defaults. */
const schema = z.strictObject({
  seed: z.number().int().min(0).max(0xffffffff).default(1).describe('random seed'),
});
/** Unsupervised detectors fit on clean data; supervised ones also on adversarial examples. */
const unsupervised: readonly Capability[] = ['scores', 'training-data'];
const supervised: readonly Capability[] = ['gradients', 'scores', 'training-data'];

export const DETECTORS = [
  {
    name: 'squeeze',
    supervised: false,
    schema,
    requires: unsupervised,
    description: 'feature squeezing (Xu et al. 2018)',
  },
  {
    name: 'magnet',
    supervised: false,
    schema,
    requires: unsupervised,
    description: 'MagNet autoencoder reconstruction error (Meng & Chen 2017)',
  },
  {
    name: 'mahalanobis',
    supervised: false,
    schema,
    requires: unsupervised,
    description: 'Mahalanobis distance, tied covariance (Lee et al. 2018)',
  },
  {
    name: 'strip',
    supervised: false,
    schema,
    requires: unsupervised,
    description:
      'STRIP: entropy of predictions on the input superimposed on clean images (Gao et al. 2019); input-time backdoor detector',
  },
  {
    name: 'lid',
    supervised: true,
    schema,
    requires: supervised,
    description: 'local intrinsic dimensionality (Ma et al. 2018)',
  },
  {
    name: 'kde',
    supervised: true,
    schema,
    requires: supervised,
    description: 'kernel density + MC-dropout uncertainty (Feinman et al. 2017)',
  },
  {
    name: 'learned',
    supervised: true,
    schema,
    requires: supervised,
    description: 'logistic regression on penultimate activations',
  },
] as const satisfies readonly (RegistryEntry & { supervised: boolean })[];

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
    case 'strip':
      return new StripDetector({ seed: seed || 1 });
    case 'lid':
      return new LidDetector({ seed: seed || 1 });
    case 'kde':
      return new KdeDetector({ seed: seed || 1 });
    case 'learned':
      return new LearnedDetector();
  }
}

/** A detector from options checked against its schema (an option it does not read is refused). */
export function detectorFromOptions(
  name: DetectorName,
  options: Record<string, unknown>,
): Detector {
  const entry = DETECTORS.find((d) => d.name === name)!;
  return createDetector(name, parseEntryOptions(entry, options).seed as number);
}
