/**
 * Certification benchmark: `npm run bench -- certify`. Prints one JSON object.
 *
 * `benchBounds()`: IBP and CROWN (default config: CROWN intermediate bounds up to 1,024 neurons)
 * and CROWN-IBP on the first 1,000 images of the bundled Fashion-MNIST test split, for
 * models/fmnist-mlp and models/fmnist-cnn-small, in batches of 100 examples, at L∞ eps 0.01.
 * Seconds are wall-clock for the certificates alone (model loading excluded); certified
 * accuracies come along so a speed-up that loosens the bounds shows.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  type CertifyBoundsResult,
  type CrownConfigInput,
  certifyCrown,
  certifyIbp,
} from '../src/certify/index.js';
import { certifySmoothingDatasetPooled } from '../src/certify/smoothing-dataset.js';
import { type Dataset, exampleSize, loadDataset, takeFirst } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { packageRoot } from '../src/engine/paths.js';
import { WorkerPool } from '../src/engine/pool.js';
import { predictDatasetPooled } from '../src/evaluate/predictions.js';
import { loadClassifier, type TfjsClassifier } from '../src/models/index.js';
import { ENGINES, withEngine } from './engine.js';

const IMAGES = 1000;
const BATCH = 100;
const EPS = 0.01;

type Certifier = (
  model: TfjsClassifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
) => Promise<CertifyBoundsResult>;

/** Seconds and certified accuracy of `certifier` over `data`, in batches. */
async function timeCertifier(model: TfjsClassifier, data: Dataset, certifier: Certifier) {
  const per = exampleSize(data);
  const n = data.shape[0];
  let certified = 0;
  const started = performance.now();
  for (let start = 0; start < n; start += BATCH) {
    const m = Math.min(BATCH, n - start);
    const x = tf.tensor(data.x.subarray(start * per, (start + m) * per), [
      m,
      ...data.shape.slice(1),
    ]);
    const y = tf.tensor1d(data.labels.subarray(start, start + m), 'int32');
    const r = await certifier(model, x, y);
    certified += r.certified.filter(Boolean).length;
    tf.dispose([x, y, r.lower, r.upper, r.marginLower]);
  }
  const seconds = (performance.now() - started) / 1000;
  return { seconds: Math.round(seconds * 100) / 100, certified_accuracy: certified / n };
}

export async function benchBounds(): Promise<Record<string, unknown>> {
  const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), IMAGES);
  const crown =
    (config: CrownConfigInput): Certifier =>
    (m, x, y) =>
      certifyCrown(m, x, y, EPS, config);
  const out: Record<string, unknown> = { images: IMAGES, eps: EPS, batch: BATCH };
  for (const name of ['fmnist-mlp', 'fmnist-cnn-small']) {
    const model = await loadClassifier(join(packageRoot(), 'models', name), { engine: 'tfjs' });
    out[name] = {
      ibp: await timeCertifier(model, data, (m, x, y) => certifyIbp(m, x, y, EPS)),
      crown: await timeCertifier(model, data, crown({})),
      crown_ibp: await timeCertifier(model, data, crown({ intermediate: 'ibp' })),
    };
    model.dispose();
  }
  return out;
}

/**
 * Smoothing throughput on `models/fmnist-cnn-noise025` (cnn-small) with one worker per core, on
 * the engine $PARRY_ENGINE names (the benchmark runs it per engine):
 * base-classifier forward passes per second while certifying (noise sampled and counted on the
 * workers, batches of 1,000 noisy copies), against plain batched inference of as many images in
 * batches of 1,000 on the same pool.
 */
export async function benchSmoothing(backend: string): Promise<Record<string, unknown>> {
  const dir = join(packageRoot(), 'models', 'fmnist-cnn-noise025');
  const workers = availableParallelism();
  const pool = new WorkerPool({ workers, backend });
  await pool.ready();
  try {
    const examples = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 8 * workers);
    const config = { sigma: 0.25, n0: 100, n: 4000, alpha: 0.001, batchSize: 1000 };
    // Warm-up: every worker loads the model and compiles its kernels.
    await certifySmoothingDatasetPooled(
      pool,
      dir,
      takeFirst(examples, workers),
      { ...config, n: 1000 },
      1,
    );
    let started = performance.now();
    const r = await certifySmoothingDatasetPooled(pool, dir, examples, config, 0);
    const smoothingPerS = r.forwardPasses / ((performance.now() - started) / 1000);
    const test = loadDataset('fashion-mnist-subset', 'test');
    const copies = Math.ceil(r.forwardPasses / test.shape[0]);
    const x = new Float32Array(copies * test.x.length);
    for (let i = 0; i < copies; i++) x.set(test.x, i * test.x.length);
    const big: Dataset = {
      ...test,
      x,
      shape: [copies * test.shape[0], ...test.shape.slice(1)],
      labels: new Int32Array(copies * test.shape[0]),
    };
    started = performance.now();
    await predictDatasetPooled(pool, dir, big, 1000);
    const inferencePerS = big.shape[0] / ((performance.now() - started) / 1000);
    return {
      model: 'fmnist-cnn-noise025',
      workers,
      forward_passes_per_s: Math.round(smoothingPerS),
      inference_images_per_s: Math.round(inferencePerS),
      smoothing_over_inference: Math.round((smoothingPerS / inferencePerS) * 1000) / 1000,
    };
  } finally {
    await pool.close();
  }
}

export async function benchCertify(backend?: string): Promise<Record<string, unknown>> {
  const name = await initBackend(backend);
  const smoothing: Record<string, unknown> = {};
  for (const engine of ENGINES) {
    smoothing[engine] = await withEngine(engine, () => benchSmoothing(name));
  }
  return {
    benchmark: 'certify',
    backend: name,
    smoothing,
    bounds: await benchBounds(),
  };
}
