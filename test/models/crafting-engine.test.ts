/**
 * ONNX Runtime inside adversarial training: the crafting engine gives tfjs's input gradient for
 * the model's weights as they are at each call (it re-reads them), follows the engine choice, and
 * a PGD-AT run on it releases its sessions and leaks no tensors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { objectiveGradient } from '../../src/attacks/evasion/gradient-loop.js';
import { attackObjective, CE_MARGIN_WEIGHT } from '../../src/attacks/evasion/objective.js';
import { syntheticDataset } from '../../src/data/index.js';
import { createPgdTraining, createTrades } from '../../src/defenses/index.js';
import { trainingClassifier } from '../../src/defenses/training/adversarial.js';
import { OrtSession } from '../../src/engine/ort/session.js';
import {
  buildArchitecture,
  craftingEngine,
  releaseCraftingEngine,
} from '../../src/models/index.js';
import { klDivergence } from '../../src/objectives/losses.js';
import { trainModel } from '../../src/train/loop.js';
import { maxDiff } from './onnx-helpers.js';

const saved = process.env.PARRY_ENGINE;
afterEach(() => {
  if (saved === undefined) delete process.env.PARRY_ENGINE;
  else process.env.PARRY_ENGINE = saved;
});

const shape = [12, 12, 1];

describe('crafting engine', () => {
  it('gives the tfjs input gradient for the current weights, call after call', () => {
    process.env.PARRY_ENGINE = 'ort';
    const model = buildArchitecture('cnn-tiny', { inputShape: shape, numClasses: 3, seed: 3 });
    const x = tf.randomUniform([6, ...shape], 0, 1, 'float32', 1);
    const goal = tf.tensor1d([0, 1, 2, 0, 1, 2], 'int32');
    const loss = { kind: 'ce' as const, marginWeight: CE_MARGIN_WEIGHT, targeted: false };
    const tfjsGradient = () =>
      tf.tidy(() =>
        tf.grad((z: tf.Tensor) =>
          tf.sum(
            attackObjective(model.apply(z, { training: false }) as tf.Tensor2D, goal, false, 'ce'),
          ),
        )(x),
      );
    const sessions = OrtSession.live;
    const first = craftingEngine(model, [0, 1])!.lossGradient(x, goal, loss);
    const want = tfjsGradient();
    expect(maxDiff(first.dataSync(), want.dataSync())).toBeLessThan(1e-4);
    // New weights: the next call reads them.
    model.setWeights(
      model.getWeights().map((w, i) => tf.randomNormal(w.shape, 0, 0.3, 'float32', i)),
    );
    const second = craftingEngine(model, [0, 1])!.lossGradient(x, goal, loss);
    const want2 = tfjsGradient();
    expect(maxDiff(second.dataSync(), want2.dataSync())).toBeLessThan(1e-4);
    expect(maxDiff(second.dataSync(), first.dataSync())).toBeGreaterThan(1e-3);
    // A loss the engine has no head for (TRADES' KL) differentiates through its logits.
    const view = trainingClassifier(model, [0, 1]);
    expect(view.engine).toBeDefined();
    const clean = tf.tidy(() => model.apply(x, { training: false }) as tf.Tensor2D);
    const kl = (l: tf.Tensor2D) => klDivergence(clean, l);
    const xs = tf.tidy(() => tf.add(x, 0.05));
    const got = tf.tidy(() => objectiveGradient(view, xs, kl));
    const ref = tf.tidy(() =>
      tf.grad((z: tf.Tensor) => tf.sum(kl(model.apply(z, { training: false }) as tf.Tensor2D)))(xs),
    );
    expect(maxDiff(got.dataSync(), ref.dataSync())).toBeLessThan(1e-4);
    releaseCraftingEngine(model);
    expect(OrtSession.live).toBe(sessions);
    tf.dispose([x, goal, first, want, second, want2, clean, xs, got, ref]);
    model.dispose();
  });

  it('follows the engine choice: none under tfjs', () => {
    process.env.PARRY_ENGINE = 'tfjs';
    const model = buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 3 });
    expect(craftingEngine(model, [0, 1])).toBeUndefined();
    expect(trainingClassifier(model, [0, 1]).engine).toBeUndefined();
    model.dispose();
  });

  it('PGD-AT and TRADES on ORT: sessions released and tensors flat after training', async () => {
    process.env.PARRY_ENGINE = 'ort';
    const data = syntheticDataset({ shape, numClasses: 3, n: 64, seed: 4 });
    const sessions = OrtSession.live;
    for (const method of [
      createPgdTraining({ eps: 0.1, steps: 3 }),
      createTrades({ eps: 0.1, steps: 3 }),
    ]) {
      const model = buildArchitecture('cnn-tiny', { inputShape: shape, numClasses: 3, seed: 2 });
      const before = tf.memory().numTensors;
      const r = await trainModel(model, data, { epochs: 2, batchSize: 16, seed: 1 }, method);
      expect(r.epochs[1].loss).toBeLessThan(r.epochs[0].loss);
      expect(tf.memory().numTensors).toBe(before);
      expect(OrtSession.live).toBe(sessions);
      model.dispose();
    }
  });
});
