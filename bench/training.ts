/**
 * Training benchmark: seconds for one epoch of `cnn-small` on the first N (default 10,000)
 * Fashion-MNIST training images (the bundled subset's 2,000 when the full set is not installed),
 * batch 128, for plain training and each robust method at L∞ eps 0.1, data-parallel over one
 * worker per core like `parry train`. Also the speed-up of the pool over one thread for PGD-AT,
 * on a quarter of the images. `--n N` changes N. `--engine tfjs|ort` (default: both, one after the
 * other) picks where the robust methods craft their attacks (the weight update stays on tfjs).
 */
import { availableParallelism } from 'node:os';
import type * as tfl from '@tensorflow/tfjs-layers';
import { type Dataset, loadDataset, takeFirst } from '../src/data/index.js';
import {
  createFastTraining,
  createPgdTraining,
  createTrades,
  type RobustTraining,
} from '../src/defenses/index.js';
import { parallelTraining, type ShardMethod } from '../src/defenses/training/shard.js';
import { initBackend } from '../src/engine/backend.js';
import { WorkerPool } from '../src/engine/pool.js';
import { buildArchitecture } from '../src/models/index.js';
import { type TrainHooks, trainModel } from '../src/train/loop.js';
import { ENGINES, withEngine } from './engine.js';

const EPS = 0.1;
const BATCH = 128;

interface Method {
  name: string;
  create?: () => RobustTraining & { config: object };
  shard?: ShardMethod;
}

const METHODS: Method[] = [
  { name: 'none' },
  { name: 'fast-at', create: () => createFastTraining({ eps: EPS, seed: 1 }), shard: 'fast-at' },
  {
    name: 'pgd-at',
    create: () => createPgdTraining({ eps: EPS, steps: 7, seed: 1 }),
    shard: 'pgd-at',
  },
  {
    name: 'trades',
    create: () => createTrades({ eps: EPS, steps: 7, beta: 6, seed: 1 }),
    shard: 'trades',
  },
];

function trainingData(n: number): { data: Dataset; name: string } {
  try {
    const full = loadDataset('fashion-mnist', 'train');
    return { data: takeFirst(full, Math.min(n, full.shape[0])), name: 'fashion-mnist' };
  } catch {
    const subset = loadDataset('fashion-mnist-subset', 'train');
    return { data: takeFirst(subset, Math.min(n, subset.shape[0])), name: 'fashion-mnist-subset' };
  }
}

/** Seconds of one epoch of `method` on `data`, with `pool` (or in this thread without one). */
async function epochSeconds(
  method: Method,
  data: Dataset,
  pool: WorkerPool | undefined,
): Promise<{ seconds: number; gradientsPerExample: number }> {
  const model: tfl.LayersModel = buildArchitecture('cnn-small', {
    inputShape: data.shape.slice(1),
    numClasses: data.numClasses,
    seed: 1,
  });
  const t = method.create?.();
  const hooks: TrainHooks = { pool };
  if (t && method.shard) {
    hooks.lossFn = t.lossFn;
    hooks.prepare = t.prepare;
    if (pool) hooks.parallelLoss = parallelTraining(method.shard, t.config, t.cost);
  }
  const r = await trainModel(model, data, { epochs: 1, batchSize: BATCH, seed: 1 }, hooks);
  model.dispose();
  return { seconds: r.epochs[0].seconds, gradientsPerExample: t ? t.cost.perExample() : 1 };
}

export async function benchTraining(backend?: string): Promise<Record<string, unknown>> {
  const name = await initBackend(backend);
  const ei = process.argv.indexOf('--engine');
  const engines = ei >= 0 ? [process.argv[ei + 1]] : ENGINES;
  const out: Record<string, unknown> = { benchmark: 'training', backend: name };
  for (const engine of engines) {
    out[engine] = await withEngine(engine, () => trainingPerEngine(name));
  }
  const seconds = (e: string) =>
    (out[e] as { seconds_per_epoch?: Record<string, number> } | undefined)?.seconds_per_epoch;
  const tfjs = seconds('tfjs');
  const ort = seconds('ort');
  if (tfjs && ort) {
    out.tfjs_over_ort = Object.fromEntries(
      Object.keys(tfjs).map((k) => [k, round(tfjs[k] / ort[k])]),
    );
  }
  return out;
}

async function trainingPerEngine(name: string): Promise<Record<string, unknown>> {
  const ni = process.argv.indexOf('--n');
  const n = ni >= 0 ? Number(process.argv[ni + 1]) : 10_000;
  const { data, name: dataset } = trainingData(n);
  const workers = availableParallelism();
  const pool = new WorkerPool({ workers, backend: name });
  await pool.ready();
  try {
    // Warm-up: the workers' first step builds the model and compiles kernels.
    await epochSeconds(METHODS[0], takeFirst(data, BATCH), pool);
    const perEpoch: Record<string, number> = {};
    const gradients: Record<string, number> = {};
    for (const m of METHODS) {
      const r = await epochSeconds(m, data, pool);
      perEpoch[m.name] = round(r.seconds);
      gradients[m.name] = round(r.gradientsPerExample);
    }
    const quarter = takeFirst(data, Math.max(BATCH, Math.floor(data.shape[0] / 4)));
    const pgdAt = METHODS.find((m) => m.name === 'pgd-at')!;
    const pooled = await epochSeconds(pgdAt, quarter, pool);
    const single = await epochSeconds(pgdAt, quarter, undefined);
    const ratio = (k: string) => round(perEpoch[k] / perEpoch.none);
    return {
      engine: process.env.PARRY_ENGINE,
      workers,
      model: 'cnn-small',
      dataset,
      examples: data.shape[0],
      batch: BATCH,
      eps: EPS,
      attack_steps: 7,
      seconds_per_epoch: perEpoch,
      ratio_to_none: Object.fromEntries(METHODS.map((m) => [m.name, ratio(m.name)])),
      gradient_evaluations_per_example: gradients,
      pgd_at_7_target_ratio: 8,
      pgd_at_7_meets_target: perEpoch['pgd-at'] <= 8 * perEpoch.none,
      pgd_at_pool_speedup: {
        examples: quarter.shape[0],
        one_thread_s: round(single.seconds),
        pool_s: round(pooled.seconds),
        speedup: round(single.seconds / pooled.seconds),
      },
    };
  } finally {
    await pool.close();
  }
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
