/**
 * One table-driven test over the attack registry: every attack, on every norm it supports, keeps
 * its output inside the model's bounds (and inside the eps-ball unless it is a minimum-norm
 * attack), returns x itself at eps = 0, and leaves no tensors behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { perturbationNorms } from '../../src/attacks/evasion/projection.js';
import { ATTACKS } from '../../src/attacks/registry.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';
import { values } from './helpers.js';

const model = new TfjsClassifier(
  buildArchitecture('cnn-small', { inputShape: [8, 8, 1], numClasses: 4, seed: 3 }),
);
const x = tf.keep(tf.tensor(values(4 * 64, 9), [4, 8, 8, 1]));
const labels = tf.keep(tf.tensor1d([0, 1, 2, 3], 'int32'));

describe('attack registry', () => {
  for (const attack of ATTACKS) {
    for (const norm of attack.norms) {
      it(`${attack.name} (${norm}) stays in bounds${attack.minimumNorm ? '' : ' and in the ball'}`, async () => {
        const eps = norm === 'linf' ? 0.05 : 0.5;
        const before = tf.memory().numTensors;
        const params = { norm, eps, steps: 3, targeted: false, seed: 1 };
        const out = await attack.run(model, x, labels, params, {});
        const [min, max] = [tf.min(out.xAdv), tf.max(out.xAdv)];
        expect(min.dataSync()[0]).toBeGreaterThanOrEqual(model.bounds[0]);
        expect(max.dataSync()[0]).toBeLessThanOrEqual(model.bounds[1]);
        if (!attack.minimumNorm) {
          const norms = perturbationNorms(out.xAdv, x, norm);
          for (const d of norms.dataSync()) expect(d).toBeLessThanOrEqual(eps + 1e-6);
          norms.dispose();
          const zero = await attack.run(model, x, labels, { ...params, eps: 0 }, {});
          expect(Array.from(zero.xAdv.dataSync())).toEqual(Array.from(x.dataSync()));
          zero.xAdv.dispose();
        }
        // Gradient attacks report gradients, black-box attacks queries.
        expect(out.gradientEvaluations + out.queries).toBeGreaterThan(0);
        tf.dispose([min, max, out.xAdv]);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  }
});
