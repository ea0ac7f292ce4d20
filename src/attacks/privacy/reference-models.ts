/**
 * The models a membership-inference evaluation needs: a target and K reference ("shadow") models
 * of one architecture, each trained on a random half of one data pool. The halves follow Carlini
 * et al. 2022's balanced design — every example is a member of exactly ⌊m/2⌋ of the m = K + 1
 * models — so each example has IN and OUT reference models to fit (LiRA) and the target's
 * membership is a fair coin per example. Model 0 is the target; its half is what an attack must
 * find. The design is drawn from `seed` and recorded, so a run is reproducible and auditable.
 *
 * Then the outputs every attack reads: each model's logits on every pool example, under a list
 * of augmented queries (identity, horizontal flip, shifts), as LiRA queries them.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import { type Dataset, exampleSize, selectExamples } from '../../data/dataset.js';
import type { WorkerPool } from '../../engine/pool.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import { buildArchitecture } from '../../models/architectures.js';
import type { Classifier } from '../../models/classifier.js';
import { seedSchema } from '../../objectives/threat-model.js';
import { parseWith } from '../../options.js';
import { type TrainHooks, trainModel } from '../../train/loop.js';

export const populationSchema = z.strictObject({
  referenceModels: z
    .number()
    .int()
    .min(1)
    .default(16)
    .describe('reference models K besides the target (each on a random half of the pool)'),
  arch: z.string().default('cnn-small').describe('architecture of every model'),
  epochs: z.number().int().min(1).default(20).describe('training epochs of every model'),
  batchSize: z.number().int().min(1).default(128).describe('training batch size'),
  lr: z.number().positive().default(0.001).describe('learning rate'),
  optimizer: z.enum(['adam', 'sgd', 'momentum']).default('adam').describe('optimizer'),
  seed: seedSchema.default(0),
});
export type PopulationConfig = z.infer<typeof populationSchema>;

/**
 * `m` membership rows over `n` examples: row j marks the examples model j trains on. Every
 * example is in exactly ⌊m/2⌋ rows, its rows a uniformly random subset drawn from `seed`.
 */
export function membershipDesign(n: number, m: number, seed: number): Uint8Array[] {
  if (!Number.isInteger(n) || n < 2) {
    throw new ParryError('BAD_INPUT', `membershipDesign: n must be an integer >= 2, got ${n}`);
  }
  if (!Number.isInteger(m) || m < 2) {
    throw new ParryError('BAD_INPUT', `membershipDesign: m must be an integer >= 2, got ${m}`);
  }
  const rng = new Rng(seed);
  const rows = Array.from({ length: m }, () => new Uint8Array(n));
  const order = new Int32Array(m);
  const half = Math.floor(m / 2);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) order[j] = j;
    // A partial Fisher–Yates shuffle: the first `half` slots are a uniform random subset.
    for (let j = 0; j < half; j++) {
      const k = j + rng.int(m - j);
      const t = order[j];
      order[j] = order[k];
      order[k] = t;
      rows[order[j]][i] = 1;
    }
  }
  return rows;
}

/** Indices where `row` is 1. */
export function membersOf(row: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < row.length; i++) if (row[i] === 1) out.push(i);
  return out;
}

export interface Population {
  /** Model 0 is the target, 1…K the references. */
  models: tfl.LayersModel[];
  /** `membership[j][i]` = 1 when model j trained on pool example i. */
  membership: Uint8Array[];
  config: PopulationConfig;
  /** Training seconds per model. */
  seconds: number[];
  /** Per model, what its recipe recorded after training (e.g. the ε of DP-SGD); {} without one. */
  records: Record<string, unknown>[];
}

/**
 * How one model of the population trains, beyond plain cross-entropy: a robust loss, or a
 * gradient step of its own (DP-SGD). Built per model by the caller, which knows the defences;
 * every model gets the same recipe, so the attacker's reference models train as the target does.
 */
export interface PopulationRecipe {
  hooks?: Pick<TrainHooks, 'lossFn' | 'prepare' | 'parallelLoss' | 'gradientStep'>;
  /** Read after the model trained (e.g. the privacy spent). */
  record?: () => Record<string, unknown>;
}

/** One model of the population to train: model `index` (0 = target) on its half, from `seed`. */
export interface MemberJob {
  index: number;
  data: Dataset;
  seed: number;
}

/** A trained model of the population, its training seconds and its recipe's record. */
export interface TrainedMember {
  model: tfl.LayersModel;
  seconds: number;
  record: Record<string, unknown>;
}

/**
 * Trains one model of the population: the architecture built from `seed`, trained on `data`
 * with the config's schedule and the recipe, if any (data-parallel over `pool` unless the
 * recipe brings its own gradient step). The model is freed on error.
 */
export async function trainMember(
  data: Dataset,
  c: PopulationConfig,
  seed: number,
  ctx: {
    pool?: WorkerPool;
    signal?: AbortSignal;
    recipe?: (model: tfl.LayersModel, data: Dataset, seed: number) => PopulationRecipe;
    /** The share of this model's training done, in [0, 1]. */
    onProgress?: (fraction: number) => void;
  } = {},
): Promise<TrainedMember> {
  const model = buildArchitecture(c.arch, {
    inputShape: data.shape.slice(1),
    numClasses: data.numClasses,
    seed,
  });
  try {
    const recipe = ctx.recipe?.(model, data, seed) ?? {};
    const t0 = performance.now();
    await trainModel(
      model,
      data,
      { epochs: c.epochs, batchSize: c.batchSize, lr: c.lr, optimizer: c.optimizer, seed },
      {
        ...recipe.hooks,
        pool: recipe.hooks?.gradientStep ? undefined : ctx.pool,
        signal: ctx.signal,
        onBatch: ctx.onProgress
          ? (p) => ctx.onProgress!((p.epoch - 1 + p.batch / p.numBatches) / c.epochs)
          : undefined,
      },
    );
    return {
      model,
      seconds: (performance.now() - t0) / 1000,
      record: recipe.record?.() ?? {},
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Trains the target and the K reference models on their halves of `pool` (model j's weights and
 * shuffles from seed + 1 + j). By default one after the other in this thread (each data-parallel
 * over `ctx.pool`, with `ctx.recipe`); `ctx.trainMembers` trains them elsewhere instead (e.g. one
 * job per model on an executor) and must return them in job order. `onModel` reports progress;
 * on error every model is freed.
 */
export async function trainPopulation(
  pool: Dataset,
  config: z.input<typeof populationSchema> = {},
  ctx: {
    pool?: WorkerPool;
    onModel?: (done: number, total: number) => void;
    signal?: AbortSignal;
    /** The recipe of model j (seeded with `seed`), trained on `data`; plain training without. */
    recipe?: (model: tfl.LayersModel, data: Dataset, seed: number) => PopulationRecipe;
    trainMembers?: (jobs: MemberJob[], config: PopulationConfig) => Promise<TrainedMember[]>;
  } = {},
): Promise<Population> {
  const c = parseWith('population', populationSchema, config);
  const m = c.referenceModels + 1;
  const membership = membershipDesign(pool.shape[0], m, c.seed);
  const jobs: MemberJob[] = membership.map((row, j) => ({
    index: j,
    data: selectExamples(pool, membersOf(row), `${pool.name} half ${j}`),
    seed: (c.seed + 1 + j) >>> 0,
  }));
  let trained: TrainedMember[] = [];
  if (ctx.trainMembers) {
    trained = await ctx.trainMembers(jobs, c);
  } else {
    try {
      for (const job of jobs) {
        trained.push(await trainMember(job.data, c, job.seed, ctx));
        ctx.onModel?.(job.index + 1, m);
      }
    } catch (e) {
      for (const t of trained) t.model.dispose();
      throw e;
    }
  }
  return {
    models: trained.map((t) => t.model),
    membership,
    config: c,
    seconds: trained.map((t) => t.seconds),
    records: trained.map((t) => t.record),
  };
}

/** How an example is queried: as is, mirrored left–right, or shifted by whole pixels. */
export type Query = { flip: boolean; dx: number; dy: number };

export const querySetSchema = z
  .enum(['none', 'flip', 'flip-shift'])
  .default('flip')
  .describe(
    'augmented queries per example: none (1), flip (as is and mirrored: 2), flip-shift (mirrored or not × shifts of 0/±2 pixels in x and y: 18)',
  );

/** The queries of a query set, identity first. */
export function queriesOf(set: z.infer<typeof querySetSchema>): Query[] {
  const flips = set === 'none' ? [false] : [false, true];
  const shifts = set === 'flip-shift' ? [0, -2, 2] : [0];
  const out: Query[] = [];
  for (const flip of flips)
    for (const dy of shifts) for (const dx of shifts) out.push({ flip, dx, dy });
  return out;
}

/**
 * `x` [b, h, w, c] under `q`: mirrored, then shifted by (dx, dy) pixels, the vacated border
 * filled by reflection (edge pixels not repeated).
 */
export function applyQuery(x: tf.Tensor4D, q: Query): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (Math.abs(q.dx) >= w || Math.abs(q.dy) >= h) {
    throw new ParryError(
      'BAD_INPUT',
      `applyQuery: a shift of (${q.dx}, ${q.dy}) pixels does not fit a ${h}×${w} image`,
    );
  }
  // Output pixel (r, c) reads input (reflect(r − dy), reflect(c − dx)), mirrored first when asked.
  const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * (n - 1) - i : i);
  const rows = Int32Array.from({ length: h }, (_, r) => reflect(r - q.dy, h));
  const cols = Int32Array.from({ length: w }, (_, c) => {
    const s = reflect(c - q.dx, w);
    return q.flip ? w - 1 - s : s;
  });
  return tf.tidy(() => tf.gather(tf.gather(x, rows, 1), cols, 2) as tf.Tensor4D);
}

/** Examples per forward pass. */
const BATCH = 256;

/**
 * The logits of `model` on every example of `data` under every query: `[query][i·K + k]`
 * (row-major, K classes), read back batch by batch.
 */
export function queryLogits(
  model: Pick<Classifier, 'logits' | 'numClasses'>,
  data: Dataset,
  queries: readonly Query[],
): Float32Array[] {
  if (data.shape.length !== 4) {
    throw new ParryError(
      'BAD_INPUT',
      `queryLogits: examples must be images [n, h, w, c], got shape [${data.shape.join(', ')}]`,
    );
  }
  const n = data.shape[0];
  const per = exampleSize(data);
  const k = model.numClasses;
  const out = queries.map(() => new Float32Array(n * k));
  for (let start = 0; start < n; start += BATCH) {
    const size = Math.min(BATCH, n - start);
    const x = tf.tensor4d(data.x.subarray(start * per, (start + size) * per), [
      size,
      ...(data.shape.slice(1) as [number, number, number]),
    ]);
    try {
      for (const [qi, q] of queries.entries()) {
        const logits = tf.tidy(() => model.logits(applyQuery(x, q)));
        out[qi].set(logits.dataSync(), start * k);
        logits.dispose();
      }
    } finally {
      x.dispose();
    }
  }
  return out;
}
