/**
 * The committed IBP-trained reference models keep their certificates (first 200 bundled test
 * images, L∞ eps 0.1), and no certified example falls to PGD: an independent check that the
 * certificate is sound on a real network (an attack can only find points inside the ball).
 */
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { pgd } from '../../../src/attacks/evasion/pgd.js';
import { certifyDataset, fraction } from '../../../src/certify/index.js';
import { loadDataset, takeFirst } from '../../../src/data/index.js';
import { packageRoot } from '../../../src/engine/paths.js';
import { predictDataset } from '../../../src/evaluate/predictions.js';
import { loadClassifier } from '../../../src/models/index.js';

const EPS = 0.1;
const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 200);

describe.each([
  ['fmnist-mlp-ibp', 0.6],
  ['fmnist-cnn-ibp', 0.65],
])('%s', (name, floor) => {
  it(`certifies at least ${floor} at eps 0.1, and PGD breaks no certified example`, async () => {
    const model = await loadClassifier(join(packageRoot(), 'models', name));
    const clean = await predictDataset(model, data);
    const ibp = await certifyDataset(model, data, { method: 'ibp', eps: EPS, batchSize: 200 });
    expect(clean.accuracy).toBeGreaterThanOrEqual(0.75);
    expect(fraction(ibp.certified)).toBeGreaterThanOrEqual(floor);
    const x = tf.tensor(data.x, data.shape);
    const labels = tf.tensor1d(data.labels, 'int32');
    const config = { eps: EPS, steps: 20, restarts: 2, loss: 'margin' as const, seed: 1 };
    const { xAdv } = await pgd(model, x, labels, config);
    const adv = tf.tidy(() => tf.argMax(model.logits(xAdv), 1));
    const predicted = Array.from(await adv.data());
    const broken = ibp.certified.filter((c, i) => c && predicted[i] !== data.labels[i]).length;
    expect(broken).toBe(0);
    const robust = predicted.filter((p, i) => p === data.labels[i]).length / predicted.length;
    expect(robust).toBeGreaterThanOrEqual(fraction(ibp.certified));
    tf.dispose([x, labels, xAdv, adv]);
    model.dispose();
  });
});
