/**
 * The data-inspection defences against poisoning, as a plain list in the registry shape every
 * family shares: one strict schema per method, what it needs from the model, and one factory whose
 * runner inspects a training set with a model trained on it and returns an `InspectionResult`.
 * `parry inspect` generates its options from these schemas.
 */
import { z } from 'zod';
import type { Dataset } from '../../data/dataset.js';
import type { Classifier } from '../../models/classifier.js';
import { findEntry, parseEntryOptions, type TechniqueEntry } from '../../options.js';
import { activationClustering, activationClusteringSchema } from './activation-clustering.js';
import { type FinePruningResult, finePrune, finePruningSchema } from './fine-pruning.js';
import { layersModelOf } from './fresh-model.js';
import type { InspectionResult } from './inspection.js';
import { deepKnn, knnSchema } from './knn.js';
import { lossFiltering, lossFilterSchema, type RetrainContext } from './loss-filter.js';
import {
  type NeuralCleanseResult,
  neuralCleanse,
  neuralCleanseSchema,
  unlearn,
} from './neural-cleanse.js';
import { spectralConfigSchema, spectralSignatures } from './spectral.js';

/** A data inspection, its options parsed: a model and its training set in, flagged examples out. */
export type InspectionRunner = (
  model: Classifier,
  data: Dataset,
  ctx: RetrainContext,
) => Promise<InspectionResult>;

export type InspectionEntry<S extends z.ZodObject = z.ZodObject> = TechniqueEntry<
  S,
  InspectionRunner
>;

function entry<S extends z.ZodObject>(e: InspectionEntry<S>): InspectionEntry {
  return e as unknown as InspectionEntry;
}

/** Fraction progress from a (done, total) callback. */
const counted = (ctx: RetrainContext) => (done: number, total: number) =>
  ctx.onProgress?.(total === 0 ? 1 : done / total);

export const INSPECTIONS: readonly InspectionEntry[] = [
  entry({
    name: 'ac',
    description:
      'activation clustering (Chen et al. 2018): per class, 2-means on PCA-reduced penultimate activations; a small, well-separated cluster that reclassifies elsewhere is flagged',
    schema: activationClusteringSchema,
    requires: ['training-data'],
    create: (o) => (model, data, ctx) => activationClustering(model, data, o, ctx),
  }),
  entry({
    name: 'spectral',
    description:
      'spectral signatures (Tran et al. 2018): per class, the 1.5·ε·n_y examples furthest along the top singular direction of the centred penultimate features',
    schema: spectralConfigSchema,
    requires: ['training-data'],
    create: (o) => async (model, data, ctx) => spectralSignatures(model, data, o, counted(ctx)),
  }),
  entry({
    name: 'knn',
    description:
      "deep k-NN (Peri et al. 2020): an example whose label is not a mode of its k nearest neighbours' labels in feature space",
    schema: knnSchema,
    requires: ['training-data'],
    create: (o) => async (model, data, ctx) => deepKnn(model, data, o, counted(ctx)),
  }),
  entry({
    name: 'loss',
    description:
      'loss filtering: the highest-loss fraction of the set under a fresh copy of the model warmed up briefly on it',
    schema: lossFilterSchema,
    requires: ['training-data'],
    create: (o) => (model, data, ctx) => lossFiltering(model, data, o, ctx),
  }),
];

export function inspectionNames(): string[] {
  return INSPECTIONS.map((e) => e.name);
}

/**
 * Runs the inspection called `name`: `options` checked against its schema (an option it does not
 * read is a BAD_OPTION naming both), then run on `model` and its training set `data`.
 */
export async function runInspection(
  name: string,
  model: Classifier,
  data: Dataset,
  options: Record<string, unknown>,
  ctx: RetrainContext = {},
): Promise<InspectionResult> {
  const e = findEntry(INSPECTIONS, name, 'data inspection');
  return e.create(parseEntryOptions(e, options))(model, data, ctx);
}

/**
 * What a model scan returns: Neural Cleanse's per-class triggers and anomaly indices (and, with
 * `unlearn`, the stamped examples of the fine-tuning set), or fine-pruning's record. `modelChanged`:
 * the model's weights were updated in place (save it; a native session on it is stale).
 */
export interface ScanResult {
  method: string;
  neuralCleanse?: NeuralCleanseResult;
  finePruning?: FinePruningResult;
  modelChanged: boolean;
}

/** A model scan, its options parsed: a model and clean data the defender holds in. */
export type ScanRunner = (
  model: Classifier,
  clean: Dataset,
  ctx: RetrainContext,
) => Promise<ScanResult>;

export type ScanEntry<S extends z.ZodObject = z.ZodObject> = TechniqueEntry<S, ScanRunner>;

function scanEntry<S extends z.ZodObject>(e: ScanEntry<S>): ScanEntry {
  return e as unknown as ScanEntry;
}

const cleanseSchema = neuralCleanseSchema.extend({
  /** Mitigate: fine-tune on clean data, 20% stamped with the flagged classes' triggers, 1 epoch. */
  unlearn: z
    .boolean()
    .default(false)
    .describe('fine-tune the flagged backdoor away (20% of the clean data stamped, 1 epoch)'),
});

export const SCANS: readonly ScanEntry[] = [
  scanEntry({
    name: 'neural-cleanse',
    description:
      'Neural Cleanse (Wang et al. 2019): the smallest trigger per class, MAD anomaly index, flagged above 2; unlearning with the reversed triggers',
    schema: cleanseSchema,
    requires: ['gradients', 'training-data'],
    create:
      ({ unlearn: mitigate, ...o }) =>
      async (model, clean, ctx) => {
        const share = mitigate ? 0.8 : 1;
        const r = neuralCleanse(model, clean, o, (done, total) =>
          ctx.onProgress?.((share * done) / total),
        );
        if (!mitigate || r.flagged.length === 0) {
          return { method: 'neural-cleanse', neuralCleanse: r, modelChanged: false };
        }
        const lm = layersModelOf(model, 'unlearning');
        const triggers = r.triggers.filter((t) => r.flagged.includes(t.target));
        await unlearn(
          lm,
          clean,
          triggers,
          { seed: o.seed },
          {
            pool: ctx.pool,
            onProgress: (f) => ctx.onProgress?.(0.8 + 0.2 * f),
          },
        );
        return { method: 'neural-cleanse', neuralCleanse: r, modelChanged: true };
      },
  }),
  scanEntry({
    name: 'fine-pruning',
    description:
      'fine-pruning (Liu et al. 2018): prune the channels of the last convolution clean data leaves dormant, within an accuracy budget, then fine-tune',
    schema: finePruningSchema,
    requires: ['training-data'],
    create: (o) => async (model, clean, ctx) => {
      const r = await finePrune(model, clean, o, ctx);
      return { method: 'fine-pruning', finePruning: r, modelChanged: true };
    },
  }),
];

export function scanNames(): string[] {
  return SCANS.map((e) => e.name);
}

/** Runs the model scan called `name` with its `options` checked, on `model` and clean data. */
export async function runScan(
  name: string,
  model: Classifier,
  clean: Dataset,
  options: Record<string, unknown>,
  ctx: RetrainContext = {},
): Promise<ScanResult> {
  const e = findEntry(SCANS, name, 'model scan');
  return e.create(parseEntryOptions(e, options))(model, clean, ctx);
}
