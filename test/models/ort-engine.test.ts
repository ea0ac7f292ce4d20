/**
 * The ONNX Runtime engine against tfjs on the same model: logits and input gradients of the
 * reference CNN (a LayersModel, through its ONNX export) and of the PyTorch fixture agree, PGD
 * and FGSM reach the same robust accuracy within one example per 200 (seeded), and a long loop of
 * gradient calls leaks no tensors.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { attackGradient, objectiveGradient } from '../../src/attacks/evasion/gradient-loop.js';
import { fgsm, mim, pgd } from '../../src/attacks/evasion/index.js';
import { attackObjective, CE_MARGIN_WEIGHT } from '../../src/attacks/evasion/objective.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { loadDataset, takeFirst } from '../../src/data/index.js';
import { OrtSession } from '../../src/engine/ort/session.js';
import { packageRoot } from '../../src/engine/paths.js';
import { loadClassifier } from '../../src/models/index.js';
import { crossEntropy } from '../../src/objectives/losses.js';
import { maxDiff } from './onnx-helpers.js';

const root = packageRoot();
const CNN = path.join(root, 'models', 'fmnist-cnn-small');
const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 200);

describe('ONNX Runtime engine', () => {
  // Every reference classifier (the denoiser is an image-to-image model, not one).
  const REFERENCE = [
    'fmnist-mlp',
    'fmnist-mlp-ibp',
    'fmnist-cnn-small',
    'fmnist-cnn-ibp',
    'fmnist-cnn-noise025',
    'fmnist-cnn-pgd-at',
    'fmnist-cnn-fast-at',
    'fmnist-cnn-trades',
    'fmnist-resnet',
  ].map((name) => path.join(root, 'models', name));
  it.each([...REFERENCE, path.join(root, 'test', 'fixtures', 'torch-tiny')])(
    'logits and input gradients equal tfjs: %s',
    async (dir) => {
      const [slow, fast] = await Promise.all([
        loadClassifier(dir, { engine: 'tfjs' }),
        loadClassifier(dir, { engine: 'ort' }),
      ]);
      expect(fast.engine?.name).toBe('ort');
      const shape = [8, ...slow.inputShape];
      const x = tf.randomUniform(shape, 0, 1, 'float32', 3);
      const labels = tf.tensor1d(
        [0, 1, 2, 0, 1, 2, 0, 1].map((v) => v % slow.numClasses),
        'int32',
      );
      // The classifier's logits run on the engine, their gradient through its VJP graph.
      const logits = fast.logits(x);
      const want = tf.tidy(() => slow.logits(x));
      expect(maxDiff(logits.dataSync(), want.dataSync())).toBeLessThan(1e-4);
      const objective = (l: tf.Tensor2D) => crossEntropy(l, labels);
      const g = tf.tidy(() => objectiveGradient(fast, x, objective));
      const gWant = tf.tidy(() => objectiveGradient(slow, x, objective));
      expect(maxDiff(g.dataSync(), gWant.dataSync())).toBeLessThan(1e-4);
      tf.dispose([x, labels, logits, want, g, gWant]);
      slow.dispose();
      fast.dispose();
    },
    60_000,
  );

  it.each([
    ['ce', false],
    ['ce', true],
    ['margin', false],
    ['margin', true],
  ] as const)(
    'the %s loss head (targeted: %s) gives the gradient of the attack objective in one run',
    async (loss, targeted) => {
      const [slow, fast] = await Promise.all([
        loadClassifier(CNN, { engine: 'tfjs' }),
        loadClassifier(CNN, { engine: 'ort' }),
      ]);
      const x = tf.randomUniform([8, 28, 28, 1], 0, 1, 'float32', 7);
      const goal = tf.tensor1d([3, 1, 4, 1, 5, 9, 2, 6], 'int32');
      const got = fast.engine!.lossGradient(x, goal, {
        kind: loss,
        marginWeight: CE_MARGIN_WEIGHT,
        targeted,
      });
      const want = tf.tidy(() =>
        objectiveGradient(slow, x, (l) => attackObjective(l, goal, targeted, loss)),
      );
      expect(maxDiff(got.dataSync(), want.dataSync())).toBeLessThan(1e-4);
      expect(maxDiff(want.dataSync(), new Float32Array(want.size))).toBeGreaterThan(1e-3);
      tf.dispose([x, goal, got, want]);
      slow.dispose();
      fast.dispose();
    },
  );

  it('PGD-10, FGSM and MIM reach the same robust accuracy on both engines (within 1 in 200)', async () => {
    const [slow, fast] = await Promise.all([
      loadClassifier(CNN, { engine: 'tfjs' }),
      loadClassifier(CNN, { engine: 'ort' }),
    ]);
    const x = tf.tensor(data.x, data.shape);
    const labels = tf.tensor1d(data.labels, 'int32');
    const robust = async (run: () => Promise<{ predictions: tf.Tensor1D }>) => {
      const r = await run();
      const p = r.predictions.dataSync();
      disposeAttackResult(r as Parameters<typeof disposeAttackResult>[0]);
      return p.filter((v, i) => v === data.labels[i]).length;
    };
    const params = { eps: 0.1, steps: 10, seed: 0 };
    const [pgdSlow, pgdFast] = [
      await robust(() => pgd(slow, x, labels, params)),
      await robust(() => pgd(fast, x, labels, params)),
    ];
    expect(Math.abs(pgdSlow - pgdFast)).toBeLessThanOrEqual(1);
    const [fgsmSlow, fgsmFast] = [
      await robust(() => fgsm(slow, x, labels, { eps: 0.05 })),
      await robust(() => fgsm(fast, x, labels, { eps: 0.05 })),
    ];
    expect(Math.abs(fgsmSlow - fgsmFast)).toBeLessThanOrEqual(1);
    const [mimSlow, mimFast] = [
      await robust(() => mim(slow, x, labels, { eps: 0.05, steps: 10 })),
      await robust(() => mim(fast, x, labels, { eps: 0.05, steps: 10 })),
    ];
    expect(Math.abs(mimSlow - mimFast)).toBeLessThanOrEqual(1);
    expect(fgsmFast).toBeGreaterThan(pgdFast); // the attacks did something
    tf.dispose([x, labels]);
    slow.dispose();
    fast.dispose();
  }, 240_000);

  it('1,000 gradient calls keep tensors and sessions flat; dispose releases the sessions', async () => {
    const sessions = OrtSession.live;
    const fast = await loadClassifier(path.join(root, 'models', 'fmnist-mlp'), { engine: 'ort' });
    const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 5);
    const labels = tf.tensor1d([1, 2, 3, 4], 'int32');
    const objective = (l: tf.Tensor2D) => crossEntropy(l, labels);
    const named = { goal: labels, targeted: false, loss: 'ce' as const };
    const call = (i: number) =>
      (i % 2 ? objectiveGradient(fast, x, objective) : attackGradient(fast, x, named)).dispose();
    call(0);
    call(1);
    const before = tf.memory().numTensors;
    const open = OrtSession.live;
    for (let i = 0; i < 1000; i++) call(i);
    expect(tf.memory().numTensors).toBe(before);
    expect(OrtSession.live).toBe(open);
    tf.dispose([x, labels]);
    fast.dispose();
    expect(OrtSession.live).toBe(sessions);
  }, 120_000);

  it('auto takes ORT when every op is covered', async () => {
    const auto = await loadClassifier(CNN, { engine: 'auto' });
    expect(auto.engine?.name).toBe('ort');
    auto.dispose();
  });
});
