/**
 * Loss-based filtering: a model warmed up briefly on the (possibly poisoned) training set has not
 * yet memorised the examples that contradict the rest — flipped labels, poisons labelled against
 * their content — so their loss is high; the `fraction` of the set with the highest loss is
 * flagged. The warm-up trains a fresh, seeded copy of the given model's architecture for
 * `warmupEpochs` (0: score with the given model as it is). Score: the example's cross-entropy.
 * Threat model: dirty-label poisons; clean-label poisons, whose labels agree with their content,
 * are not expected to stand out.
 */
import { z } from 'zod';
import type { Dataset } from '../../data/index.js';
import type { WorkerPool } from '../../engine/pool.js';
import type { Classifier } from '../../models/classifier.js';
import { TfjsClassifier } from '../../models/tfjs-classifier.js';
import { parseWith } from '../../options.js';
import { trainModel } from '../../train/loop.js';
import { exampleLosses, freshCopy, layersModelOf } from './fresh-model.js';
import type { InspectionResult } from './inspection.js';

export const lossFilterSchema = z
  .strictObject({
    /** Share of the training set flagged (the highest losses). */
    fraction: z
      .number()
      .gt(0)
      .max(0.5)
      .default(0.1)
      .describe('share of the set flagged (highest losses)'),
    /** Epochs of warm-up from fresh weights; 0 scores with the given model. */
    warmupEpochs: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(1)
      .describe('warm-up epochs from fresh weights (0: score with the model as given)'),
    batchSize: z.number().int().min(1).default(128).describe('warm-up batch size'),
    lr: z.number().positive().default(1e-3).describe('warm-up learning rate (Adam)'),
    /** Seeds the fresh weights and the warm-up's shuffles. */
    seed: z
      .number()
      .int()
      .min(0)
      .max(0xffffffff)
      .default(0)
      .describe('seed of the fresh weights and shuffles'),
  })
  .describe('loss filtering');
export type LossFilterConfig = z.infer<typeof lossFilterSchema>;

export interface RetrainContext {
  /** Data-parallel training steps. */
  pool?: WorkerPool;
  /** Progress as a fraction in [0, 1]. */
  onProgress?: (fraction: number) => void;
}

/** Loss filtering on the training set `data`; `model` gives the architecture (or the scores). */
export async function lossFiltering(
  model: Classifier,
  data: Dataset,
  config: z.input<typeof lossFilterSchema> = {},
  ctx: RetrainContext = {},
): Promise<InspectionResult> {
  const c = parseWith('loss filtering', lossFilterSchema, config);
  let scorer = model;
  let warm: TfjsClassifier | undefined;
  if (c.warmupEpochs > 0) {
    const lm = await freshCopy(layersModelOf(model, 'loss filtering'), c.seed);
    const tc = model as TfjsClassifier;
    warm = new TfjsClassifier(lm, { bounds: tc.bounds, mean: tc.mean, std: tc.std });
    await trainModel(
      lm,
      data,
      { epochs: c.warmupEpochs, batchSize: c.batchSize, lr: c.lr, seed: c.seed },
      {
        pool: ctx.pool,
        onBatch: (p) => ctx.onProgress?.((p.epoch - 1 + p.batch / p.numBatches) / c.warmupEpochs),
      },
    );
    scorer = warm;
  }
  try {
    const scores = exampleLosses(scorer, data);
    const n = scores.length;
    const count = Math.floor(c.fraction * n);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
    const flagged = order.slice(0, count).sort((a, b) => a - b);
    const perClass = Array.from({ length: data.numClasses }, (_, y) => ({
      class: y,
      examples: 0,
      flagged: 0,
    }));
    for (let i = 0; i < n; i++) perClass[data.labels[i]].examples++;
    for (const i of flagged) perClass[data.labels[i]].flagged++;
    ctx.onProgress?.(1);
    return {
      method: 'loss',
      flagged,
      scores,
      perClass: perClass.filter((r) => r.examples > 0),
    };
  } finally {
    warm?.dispose();
  }
}
