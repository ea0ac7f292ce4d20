/**
 * Certification benchmark: `npm run bench -- certify`. Prints one JSON object.
 *
 * `benchBounds()`: IBP and CROWN (default config: CROWN intermediate bounds up to 1,024 neurons)
 * and CROWN-IBP on the first 1,000 images of the bundled Fashion-MNIST test split, for
 * models/fmnist-mlp and models/fmnist-cnn-small, in batches of 100 examples, at L∞ eps 0.01.
 * Seconds are wall-clock for the certificates alone (model loading excluded); certified
 * accuracies come along so a speed-up that loosens the bounds shows.
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import {
  type CertifyBoundsResult,
  type CrownConfigInput,
  certifyCrown,
  certifyIbp,
} from '../src/certify/index.js';
import { type Dataset, exampleSize, loadDataset, takeFirst } from '../src/data/index.js';
import { initBackend } from '../src/engine/backend.js';
import { packageRoot } from '../src/engine/paths.js';
import { loadClassifier, type TfjsClassifier } from '../src/models/index.js';

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
    const model = await loadClassifier(join(packageRoot(), 'models', name));
    out[name] = {
      ibp: await timeCertifier(model, data, (m, x, y) => certifyIbp(m, x, y, EPS)),
      crown: await timeCertifier(model, data, crown({})),
      crown_ibp: await timeCertifier(model, data, crown({ intermediate: 'ibp' })),
    };
    model.dispose();
  }
  return out;
}

export async function benchCertify(backend?: string): Promise<Record<string, unknown>> {
  const name = await initBackend(backend);
  return { benchmark: 'certify', backend: name, bounds: await benchBounds() };
}
