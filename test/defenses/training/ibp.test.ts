/**
 * IBP certified training: the schedule, the loss gradient against central finite differences
 * (cpu and wasm), and a short run on a separable synthetic set that raises IBP-certified
 * accuracy well above plain training's.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { certifyDataset, fraction } from '../../../src/certify/index.js';
import { syntheticDataset } from '../../../src/data/index.js';
import { createIbpLoss, ibpLoss, ibpSchedule } from '../../../src/defenses/index.js';
import { ParryError } from '../../../src/errors.js';
import { buildArchitecture, TfjsClassifier } from '../../../src/models/index.js';
import { trainModel } from '../../../src/train/loop.js';
import { values } from '../../attacks/helpers.js';

describe('ibpSchedule', () => {
  const { config } = createIbpLoss({ eps: 0.2, warmup: 0.1, ramp: 0.4 });
  const at = (step: number) => ibpSchedule(config, { step, totalSteps: 100 });
  it('is clean during warm-up, ramps linearly, then holds eps and kappa 0.5', () => {
    expect(at(0)).toEqual({ eps: 0, kappa: 1 });
    expect(at(9)).toEqual({ eps: 0, kappa: 1 });
    expect(at(10).eps).toBeCloseTo(0, 12);
    expect(at(30).eps).toBeCloseTo(0.1, 12);
    expect(at(30).kappa).toBeCloseTo(0.75, 12);
    expect(at(50)).toEqual({ eps: 0.2, kappa: 0.5 });
    expect(at(99)).toEqual({ eps: 0.2, kappa: 0.5 });
  });

  it('rejects bad configs with a path', () => {
    const bad = (c: object) => () => createIbpLoss(c as { eps: number });
    expect(bad({ eps: 0.1, warmup: 0.6, ramp: 0.6 })).toThrow(/ibpTraining: ramp: warmup \+ ramp/);
    expect(bad({ eps: -1 })).toThrow(ParryError);
    expect(bad({ eps: 0.1, rampp: 0.2 })).toThrow(/ibpTraining/);
  });
});

/** dense(4 → 3, relu) → dense(3): 27 weights, fixed. */
function tinyModel(): tfl.LayersModel {
  const model = tfl.sequential({
    layers: [
      tfl.layers.dense({ inputShape: [4], units: 3, activation: 'relu' }),
      tfl.layers.dense({ units: 3 }),
    ],
  });
  let seed = 50;
  for (const w of model.weights) {
    const n = w.shape.reduce((a, b) => (a as number) * (b as number), 1) as number;
    w.write(tf.tensor(values(n, ++seed, -1, 1), w.shape as number[]));
  }
  return model;
}

describe.each(['cpu', 'wasm'])('ibpLoss on %s', (backend) => {
  it('gradient w.r.t. the weights matches central finite differences', async () => {
    const previous = tf.getBackend();
    await tf.setBackend(backend);
    try {
      const model = tinyModel();
      const x = tf.tensor2d(values(12, 60, 0.1, 0.9), [3, 4]);
      const labels = tf.tensor1d([0, 1, 2], 'int32');
      const s = { eps: 0.15, kappa: 0.5 };
      const f = () => tf.mean(ibpLoss(model, x, labels, s, [0, 1]).loss) as tf.Scalar;
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { grads } = tf.variableGrads(f, vars);
      const h = 1e-3;
      let worst = 0;
      for (const v of vars) {
        const analytic = grads[v.name].dataSync();
        const base = v.dataSync().slice();
        for (let i = 0; i < base.length; i++) {
          const shifted = (d: number) => {
            const w = base.slice();
            w[i] += d;
            v.assign(tf.tensor(w, v.shape));
            return tf.tidy(() => f().dataSync()[0]);
          };
          const numeric = (shifted(h) - shifted(-h)) / (2 * h);
          v.assign(tf.tensor(base, v.shape));
          worst = Math.max(worst, Math.abs(numeric - analytic[i]) / (1 + Math.abs(numeric)));
        }
      }
      expect(worst).toBeLessThan(2e-3);
      // The robust term matters: its gradient differs from the clean loss's.
      const clean = tf.variableGrads(
        () => tf.mean(ibpLoss(model, x, labels, { eps: 0, kappa: 1 }, [0, 1]).loss) as tf.Scalar,
        vars,
      ).grads;
      const diff = tf.tidy(() =>
        tf.addN(vars.map((v) => tf.sum(tf.abs(tf.sub(grads[v.name], clean[v.name]))))).dataSync(),
      )[0];
      expect(diff).toBeGreaterThan(1e-3);
      const before = tf.memory().numTensors;
      const out = ibpLoss(model, x, labels, s, [0, 1]);
      expect(tf.memory().numTensors).toBe(before + 2);
      tf.dispose([out.loss, out.logits]);
      tf.dispose([x, labels, ...Object.values(grads), ...Object.values(clean)]);
      model.dispose();
    } finally {
      await tf.setBackend(previous);
    }
  });
});

describe('IBP training', () => {
  it('raises IBP-certified accuracy on a separable synthetic set', async () => {
    const shape = [6, 6, 1];
    const train = syntheticDataset({ shape, numClasses: 3, n: 600, seed: 3, noise: 0.05 });
    const test = syntheticDataset({
      shape,
      numClasses: 3,
      n: 300,
      seed: 3,
      noise: 0.05,
      split: 'test',
    });
    const eps = 0.1;
    const run = async (defended: boolean) => {
      const model = buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 2 });
      const lossFn = defended ? createIbpLoss({ eps: 1.1 * eps }).lossFn : undefined;
      await trainModel(model, train, { epochs: 20, batchSize: 50, seed: 1 }, { lossFn });
      const classifier = new TfjsClassifier(model);
      const r = await certifyDataset(classifier, test, { method: 'ibp', eps });
      const clean = await certifyDataset(classifier, test, { method: 'ibp', eps: 0 });
      classifier.dispose();
      return { certified: fraction(r.certified), clean: fraction(clean.certified) };
    };
    const plain = await run(false);
    const ibp = await run(true);
    expect(plain.clean).toBeGreaterThan(0.95);
    expect(ibp.clean).toBeGreaterThan(0.95);
    expect(ibp.certified).toBeGreaterThan(0.9);
    expect(ibp.certified).toBeGreaterThan(plain.certified + 0.3);
  });
});
