import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  certifySmoothingDataset,
  certifySmoothingDatasetPooled,
} from '../../src/certify/smoothing-dataset.js';
import { loadDataset, takeFirst } from '../../src/data/index.js';
import { WorkerPool } from '../../src/engine/pool.js';
import { loadClassifier } from '../../src/models/index.js';

describe('randomized smoothing over a data set', () => {
  it('certifies the same on a worker pool as in this thread, seed for seed', async () => {
    const dir = 'models/fmnist-cnn-noise025';
    const model = await loadClassifier(dir);
    const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 6);
    const config = { sigma: 0.25, n0: 50, n: 300, alpha: 0.01, batchSize: 128 };
    const before = tf.memory().numTensors;
    const local = await certifySmoothingDataset(model, data, config, 11);
    expect(tf.memory().numTensors).toBe(before);
    // Another seed draws other noise: some lower bound moves.
    const other = await certifySmoothingDataset(model, data, config, 12);
    expect(other.rows.map((r) => r.pALower)).not.toEqual(local.rows.map((r) => r.pALower));
    const pool = new WorkerPool({ workers: 2, backend: tf.getBackend() });
    try {
      const pooled = await certifySmoothingDatasetPooled(pool, dir, data, config, 11);
      expect(pooled).toEqual(local);
    } finally {
      await pool.close();
      model.dispose();
    }
    expect(local.forwardPasses).toBe(6 * 350);
  });
});
