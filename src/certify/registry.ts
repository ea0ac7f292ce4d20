/**
 * The certificates, as a plain list in the registry shape every family shares: a strict schema
 * (threat model + the method's own options), what it needs from the model, and one function that
 * certifies a data set. `parry certify` generates its options from these schemas.
 */
import { z } from 'zod';
import type { Dataset } from '../data/index.js';
import type { WorkerPool } from '../engine/pool.js';
import type { TfjsClassifier } from '../models/tfjs-classifier.js';
import { threatModelShape } from '../objectives/threat-model.js';
import { parseEntryOptions, type RegistryEntry, requiredMessage } from '../options.js';
import { certifyDataset, fraction } from './bound-certificates.js';
import { certifiedCurve, DEFAULT_RADII } from './curve.js';
import { ABSTAIN } from './randomized-smoothing.js';
import { certifySmoothingDataset, certifySmoothingDatasetPooled } from './smoothing-dataset.js';

/** What a certificate runs on: the model (and its directory, for pool workers) and the data. */
export interface CertifyTarget {
  model: TfjsClassifier;
  modelDir: string;
  data: Dataset;
  /** Spreads the work over workers where the method can (smoothing). */
  pool?: WorkerPool;
  onProgress?: (done: number, total: number) => void;
}

export interface Certification {
  /** The headline numbers, as `parry certify` reports them. */
  summary: Record<string, unknown>;
  /** One record per example. */
  perExample: Record<string, unknown>[];
  /** Network-sized forward passes. */
  forwardPasses: number;
}

export interface CertificateEntry<S extends z.ZodObject = z.ZodObject> extends RegistryEntry<S> {
  certify(options: z.output<S>, target: CertifyTarget): Promise<Certification>;
}

const smoothingSchema = z.strictObject({
  ...threatModelShape(['l2'], { targeted: false, eps: false }),
  sigma: z
    .number({ error: requiredMessage })
    .positive()
    .describe('noise level σ (match the training noise); required'),
  n0: z.number().int().min(1).default(100).describe('samples to select the top class'),
  n: z.number().int().min(1).default(10_000).describe('samples to bound its probability'),
  alpha: z.number().gt(0).lt(1).default(0.001).describe('failure probability of each certificate'),
  batchSize: z
    .number()
    .int()
    .min(1)
    .default(1000)
    .describe('noisy copies (smoothing) or examples (ibp, crown) per pass'),
  radii: z
    .array(z.number().min(0))
    .min(1)
    .default([...DEFAULT_RADII])
    .describe('L2 radii of the certified-accuracy curve'),
});

const boundsSchema = z.strictObject({
  ...threatModelShape(['linf'], { targeted: false, eps: true }),
  batchSize: z.number().int().min(1).default(100),
});

/** Randomized smoothing (Cohen et al. 2019): a certified L2 radius per example. */
const smoothing: CertificateEntry<typeof smoothingSchema> = {
  name: 'smoothing',
  description: 'randomized smoothing (Cohen et al. 2019): certified L2 radius per example',
  schema: smoothingSchema,
  requires: ['scores'],
  async certify(o, { model, modelDir, data, pool, onProgress }) {
    const config = { sigma: o.sigma, n0: o.n0, n: o.n, alpha: o.alpha, batchSize: o.batchSize };
    const { rows, forwardPasses } = pool
      ? await certifySmoothingDatasetPooled(pool, modelDir, data, config, o.seed, { onProgress })
      : await certifySmoothingDataset(model, data, config, o.seed, { onProgress });
    const k = rows.length;
    const predictions = rows.map((e) => e.prediction);
    const radii = rows.map((e) => e.radius);
    return {
      summary: {
        certified_accuracy: certifiedCurve(predictions, radii, data.labels, o.radii),
        abstain_rate: rows.filter((e) => e.prediction === ABSTAIN).length / k,
      },
      perExample: rows as unknown as Record<string, unknown>[],
      forwardPasses,
    };
  },
};

/** Bound propagation on the L∞ ball: IBP, or CROWN with IBP's figure beside it. */
function bounds(
  method: 'ibp' | 'crown',
  description: string,
): CertificateEntry<typeof boundsSchema> {
  return {
    name: method,
    description,
    schema: boundsSchema,
    requires: ['gradients'],
    async certify(o, { model, data, onProgress }) {
      const r = await certifyDataset(model, data, {
        method,
        eps: o.eps as number,
        batchSize: o.batchSize,
        onProgress,
      });
      return {
        summary: {
          certified_accuracy: fraction(r.certified),
          ...(method === 'crown' ? { ibp_certified_accuracy: fraction(r.ibpCertified) } : {}),
        },
        perExample: r.certified.map((certified, i) => ({
          label: data.labels[i],
          certified,
          margin_lower: r.minMargin[i],
        })),
        forwardPasses: r.passes,
      };
    },
  };
}

export const CERTIFICATES: readonly CertificateEntry[] = [
  smoothing as unknown as CertificateEntry,
  bounds('ibp', 'interval bound propagation (Gowal et al. 2018): certified at an L∞ eps'),
  bounds('crown', 'CROWN (Zhang et al. 2018): linear bounds, certified at an L∞ eps'),
] as CertificateEntry[];

/** Parses `options` for `entry` and certifies `target.data`. */
export async function runCertificate(
  entry: CertificateEntry,
  options: Record<string, unknown>,
  target: CertifyTarget,
): Promise<Certification> {
  return entry.certify(parseEntryOptions(entry, options), target);
}
