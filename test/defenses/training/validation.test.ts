/**
 * Held-out accuracy of robust training's per-epoch check: its clean, robust (PGD or APGD-CE) and
 * FGSM counts equal the same attacks run directly on the same batch, it leaks no tensors, and the
 * public API exposes robust training.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { apgd } from '../../../src/attacks/evasion/apgd.js';
import { fgsm } from '../../../src/attacks/evasion/fgsm.js';
import { pgd } from '../../../src/attacks/evasion/pgd.js';
import { syntheticDataset } from '../../../src/data/index.js';
import { detectCatastrophicOverfitting, heldOutAccuracy } from '../../../src/defenses/index.js';
import * as api from '../../../src/index.js';
import { buildArchitecture, TfjsClassifier } from '../../../src/models/index.js';
import { trainModel } from '../../../src/train/loop.js';

const shape = [4, 4, 1];
const eps = 0.25;

async function trainedClassifier() {
  const train = syntheticDataset({ shape, numClasses: 3, n: 300, seed: 3 });
  const model = buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 2 });
  await trainModel(model, train, { epochs: 6, batchSize: 50, seed: 1 });
  return new TfjsClassifier(model);
}

async function accuracyOf(classifier: TfjsClassifier, x: tf.Tensor, y: tf.Tensor1D) {
  const right = (await tf.sum(tf.equal(tf.argMax(classifier.logits(x), 1), y)).data())[0];
  return right / y.shape[0];
}

describe('heldOutAccuracy', () => {
  it('counts clean, PGD/APGD-CE and FGSM accuracy exactly as the attacks run directly', async () => {
    const classifier = await trainedClassifier();
    const held = syntheticDataset({ shape, numClasses: 3, n: 120, seed: 3, split: 'test' });
    const x = tf.tensor(held.x, [120, ...shape]);
    const y = tf.tensor1d(held.labels, 'int32');
    const base = { eps, norm: 'linf' as const, steps: 10, seed: 4 };

    const viaPgd = await heldOutAccuracy(classifier, held, { ...base, withFgsm: true });
    const viaApgd = await heldOutAccuracy(classifier, held, { ...base, attack: 'apgd-ce' });

    const direct = tf.engine().startScope();
    const clean = await accuracyOf(classifier, x, y);
    const byPgd = await accuracyOf(classifier, (await pgd(classifier, x, y, base)).xAdv, y);
    const byApgd = await accuracyOf(
      classifier,
      (await apgd(classifier, x, y, { ...base, loss: 'ce' })).xAdv,
      y,
    );
    const byFgsm = await accuracyOf(
      classifier,
      (await fgsm(classifier, x, y, { eps, norm: 'linf' })).xAdv,
      y,
    );
    tf.engine().endScope(direct);

    expect(clean).toBeGreaterThan(0.8);
    // The attacks bite and disagree, so the equalities below tell which attack ran.
    expect(byPgd).toBeLessThan(clean);
    expect(new Set([byPgd, byApgd, byFgsm]).size).toBe(3);
    expect(viaPgd).toEqual({ clean, robust: byPgd, fgsm: byFgsm });
    expect(viaApgd.clean).toBe(clean);
    expect(viaApgd.robust).toBe(byApgd);
    expect(viaApgd.fgsm).toBeNaN();
    tf.dispose([x, y]);
    classifier.dispose();
  }, 60_000);

  it('splits into batches without leaking tensors', async () => {
    const classifier = await trainedClassifier();
    const held = syntheticDataset({ shape, numClasses: 3, n: 50, seed: 3, split: 'test' });
    const config = { eps, norm: 'linf' as const, steps: 3, seed: 1, batchSize: 16 };
    await heldOutAccuracy(classifier, held, { ...config, attack: 'apgd-ce' });
    const before = tf.memory().numTensors;
    const a = await heldOutAccuracy(classifier, held, { ...config, attack: 'apgd-ce' });
    const b = await heldOutAccuracy(classifier, held, { ...config, withFgsm: true });
    expect(tf.memory().numTensors).toBe(before);
    for (const v of [a.clean, a.robust, b.clean, b.robust, b.fgsm]) {
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThanOrEqual(1);
      expect(Math.round(v * 50)).toBeCloseTo(v * 50, 9); // a count over 50 examples
    }
    classifier.dispose();
  }, 60_000);

  it('names the attack in the catastrophic-overfitting verdict', () => {
    const v = detectCatastrophicOverfitting(
      { pgd: 0.5, fgsm: 0.5 },
      { pgd: 0.1, fgsm: 0.9 },
      { attack: 'APGD-CE' },
    );
    expect(v.reason).toMatch(/^APGD-CE accuracy fell from 0\.500 to 0\.100/);
  });
});

describe('public API', () => {
  it('exports robust training next to the train loop', () => {
    for (const f of [
      api.createPgdTraining,
      api.createFastTraining,
      api.createTrades,
      api.createMart,
      api.createInputGradientRegularizer,
      api.createJacobianRegularizer,
      api.createSchedule,
      api.heldOutAccuracy,
      api.trainModel,
    ])
      expect(f).toBeTypeOf('function');
  });
});
