/**
 * The format of a saved detector's detector.json (format 'parry-detector', version 1) and each
 * detector's settings as saved, with how to rebuild the (unfitted) detector from them: strict zod
 * schemas, so every problem of a hand-edited or damaged file is named by its path. persist.ts
 * reads and writes the folder.
 */
import { z } from 'zod';
import { ParryError } from '../../errors.js';
import { describeIssues, issuesOf, parseEntryOptions } from '../../options.js';
import { fprSchema } from './detector.js';
import { FeatureSqueezingDetector } from './feature-squeezing.js';
import type { SavableDetector } from './fitted-state.js';
import { KdeDetector } from './kde.js';
import { LearnedDetector } from './learned.js';
import { LidDetector } from './lid.js';
import { MagnetDetector } from './magnet.js';
import { MahalanobisDetector } from './mahalanobis.js';
import { DETECTORS, type DetectorName } from './registry.js';
import { StripDetector } from './strip.js';

export const DETECTOR_FILE = 'detector.json';
export const ARRAYS_FILE = 'arrays.bin';
export const DETECTOR_FORMAT = 'parry-detector';
export const DETECTOR_FORMAT_VERSION = 1;
/** Levels of the clean calibration-score quantiles a saved detector keeps. */
export const SCORE_QUANTILE_LEVELS = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];

const int = () => z.number().int();
const seed = () => int().min(0).max(0xffffffff);
const count = () => int().min(1);

/** Each detector's settings as saved, and how to build it from them. */
const restorer = <S extends z.ZodType>(schema: S, create: (c: z.output<S>) => SavableDetector) => ({
  schema,
  create,
});
const RESTORERS = {
  squeeze: restorer(
    z.strictObject({ bits: int().min(1).max(16).nullable(), median: count().nullable() }),
    (c) => new FeatureSqueezingDetector(c),
  ),
  magnet: restorer(
    z.strictObject({
      metric: z.enum(['l1', 'l2', 'jsd']),
      temperature: z.number().positive(),
      train: z.strictObject({
        epochs: count().optional(),
        batchSize: count().optional(),
        filters: count().optional(),
        learningRate: z.number().positive().optional(),
        seed: seed().optional(),
      }),
    }),
    (c) => new MagnetDetector(undefined, c),
  ),
  mahalanobis: restorer(
    z.strictObject({ ridge: z.number().min(0) }),
    (c) => new MahalanobisDetector(c),
  ),
  strip: restorer(z.strictObject({ samples: count(), seed: seed() }), (c) => new StripDetector(c)),
  lid: restorer(
    z.strictObject({
      k: count(),
      referenceSize: count(),
      noiseStd: z.number().min(0),
      seed: seed(),
    }),
    (c) => new LidDetector(c),
  ),
  kde: restorer(
    z.strictObject({
      bandwidth: z.number().positive().optional(),
      mcSamples: int().min(0),
      noiseStd: z.number().min(0),
      seed: seed(),
    }),
    (c) => new KdeDetector(c),
  ),
  learned: restorer(
    z.strictObject({
      hidden: int().min(0),
      steps: int().min(0),
      learningRate: z.number().positive(),
      l2: z.number().min(0),
      seed: seed(),
    }),
    (c) => new LearnedDetector(c),
  ),
} satisfies Record<DetectorName, unknown>;

export const SAVABLE = DETECTORS.map((d) => d.name) as [DetectorName, ...DetectorName[]];
const finite = () => z.number().finite();
const dims = () => z.array(int().min(0));
export const DTYPES = ['float32', 'float64', 'int32'] as const;

const fileSchema = z.strictObject({
  format: z.literal(DETECTOR_FORMAT),
  version: z.literal(DETECTOR_FORMAT_VERSION),
  detector: z.enum(SAVABLE),
  options: z.record(z.string(), z.unknown()),
  config: z.record(z.string(), z.unknown()),
  threshold: finite(),
  calibration: z.strictObject({
    fpr: fprSchema,
    scoreQuantiles: z
      .strictObject({ levels: z.array(fprSchema), values: z.array(finite()) })
      .refine((q) => q.levels.length === q.values.length, 'levels and values differ in length')
      .optional(),
  }),
  model: z.strictObject({
    contentHash: z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits'),
    inputShape: dims(),
    numClasses: count(),
    bounds: z.tuple([finite(), finite()]),
  }),
  values: z.record(z.string(), finite()),
  arrays: z.record(
    z.string(),
    z.strictObject({ dtype: z.enum(DTYPES), shape: dims(), offset: int().min(0) }),
  ),
  /** Subfolders holding fitted LayersModels: plain names, never paths. */
  models: z.array(z.string().regex(/^[a-z][a-z0-9-]*$/, 'expected a plain folder name')),
  provenance: z.record(z.string(), z.unknown()).optional(),
});

/** detector.json as read back. */
export type SavedDetectorFile = z.output<typeof fileSchema>;

/** Checks detector.json's content: format and version first, then every field. */
export function parseSavedFile(raw: unknown, where: string): SavedDetectorFile {
  const head = (raw ?? {}) as { format?: unknown; version?: unknown };
  if (typeof raw !== 'object' || raw === null || head.format !== DETECTOR_FORMAT) {
    throw new ParryError(
      'BAD_FILE',
      `${where}: ${DETECTOR_FILE} is not a saved detector (format ${JSON.stringify(head.format)}, expected '${DETECTOR_FORMAT}')`,
    );
  }
  if (head.version !== DETECTOR_FORMAT_VERSION) {
    throw new ParryError(
      'BAD_FILE',
      `${where}: ${DETECTOR_FILE} has format version ${JSON.stringify(head.version)}; this parry reads version ${DETECTOR_FORMAT_VERSION}`,
    );
  }
  const r = fileSchema.safeParse(raw);
  if (!r.success) {
    throw new ParryError(
      'BAD_FILE',
      `${where}: ${DETECTOR_FILE}: ${describeIssues(issuesOf(r.error, DETECTOR_FILE))}`,
    );
  }
  return r.data;
}

/**
 * Checks the saved settings and registry options of `saved` against its detector's schemas and
 * returns how to build the unfitted detector; 'BAD_FILE' naming every problem by its path.
 */
export function savedDetectorFactory(
  saved: SavedDetectorFile,
  where: string,
): () => SavableDetector {
  const r = RESTORERS[saved.detector];
  const config = r.schema.safeParse(saved.config);
  if (!config.success) {
    const issues = issuesOf(config.error, saved.detector).map((i) => ({
      ...i,
      path: ['config', ...i.path],
    }));
    throw new ParryError('BAD_FILE', `${where}: ${DETECTOR_FILE}: ${describeIssues(issues)}`);
  }
  const entry = DETECTORS.find((d) => d.name === saved.detector)!;
  try {
    parseEntryOptions(entry, saved.options);
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `${where}: ${DETECTOR_FILE}: options: ${(e as Error).message}`,
    );
  }
  const data = config.data;
  return () => r.create(data as never);
}
