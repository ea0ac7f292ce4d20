/**
 * Every attack in the registry on both engines (tfjs, and ONNX Runtime with generated gradient
 * graphs), on the first 200 bundled test images against the reference CNN, seeded alike: robust
 * accuracy within one example per 200, and for the minimum-norm attacks the median perturbation
 * within 5%. Budgets are small (this compares engines, not attacks).
 *
 * UAP's fitting is sequential (each example's DeepFool step starts from the perturbation so far),
 * so rounding compounds: on tfjs alone, shifting the images by ±1e-6 moved its robust count
 * between 135 and 147 of 200. Its fitting rests on DeepFool, compared here; the UAP case fits
 * once (on ONNX Runtime) and compares the engines applying that perturbation.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ATTACKS,
  type AttackParams,
  fitUniversalPerturbation,
} from '../../src/attacks/registry.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { loadDataset, takeFirst } from '../../src/data/index.js';
import { packageRoot } from '../../src/engine/paths.js';
import { loadClassifier, type TfjsClassifier } from '../../src/models/index.js';

const MODEL = path.join(packageRoot(), 'models', 'fmnist-cnn-small');
const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 200);

const BUDGETS: Record<string, Partial<AttackParams>> = {
  fgsm: { eps: 0.05 },
  bim: { eps: 0.05, steps: 10 },
  pgd: { eps: 0.05, steps: 10 },
  mim: { eps: 0.05, steps: 10 },
  square: { eps: 0.1, maxQueries: 100 },
  hsj: { norm: 'l2', maxQueries: 80, steps: 1 },
  'apgd-ce': { eps: 0.05, steps: 10 },
  'apgd-dlr': { eps: 0.05, steps: 10 },
  'apgd-t': { eps: 0.05, steps: 10, numTargets: 2 },
  auto: { eps: 0.05, steps: 10, numTargets: 2, maxQueries: 100 },
  uap: { eps: 0.1, maxEpochs: 1 },
  deepfool: { norm: 'l2', steps: 6, candidates: 3 },
  cw: { norm: 'l2', steps: 10, binarySearchSteps: 2 },
};

let slow: TfjsClassifier;
let fast: TfjsClassifier;
let x: tf.Tensor;
let labels: tf.Tensor1D;
beforeAll(async () => {
  [slow, fast] = await Promise.all([
    loadClassifier(MODEL, { engine: 'tfjs' }),
    loadClassifier(MODEL, { engine: 'ort' }),
  ]);
  x = tf.tensor(data.x, data.shape);
  labels = tf.tensor1d(data.labels, 'int32');
});
afterAll(() => {
  tf.dispose([x, labels]);
  slow.dispose();
  fast.dispose();
});

describe('every attack: the same robust accuracy on tfjs and on ONNX Runtime', () => {
  it('covers the whole registry', () => {
    expect(Object.keys(BUDGETS).sort()).toEqual(ATTACKS.map((a) => a.name).sort());
  });

  it.each(ATTACKS.map((a) => [a.name, a] as const))(
    '%s',
    async (_, entry) => {
      const params: AttackParams = { norm: 'linf', seed: 3, ...BUDGETS[entry.name] };
      if (entry.name === 'uap') {
        const fitted = await fitUniversalPerturbation(fast, data, params);
        params.universalPerturbation = fitted.perturbation;
      }
      const measure = async (model: TfjsClassifier) => {
        const r = await entry.run(model, x, labels, params, {});
        const success = Array.from(r.success.dataSync());
        const norms = Array.from(r.perturbationNorms.dataSync()).filter((_, i) => success[i]);
        disposeAttackResult(r);
        norms.sort((a, b) => a - b);
        return { robust: success.filter((s) => !s).length, median: norms[norms.length >> 1] ?? 0 };
      };
      const [a, b] = [await measure(slow), await measure(fast)];
      expect(
        Math.abs(a.robust - b.robust),
        `tfjs ${a.robust}, ort ${b.robust}`,
      ).toBeLessThanOrEqual(1);
      expect(a.robust).toBeLessThan(200); // the attack did something
      if (entry.minimumNorm) {
        expect(Math.abs(a.median - b.median)).toBeLessThanOrEqual(0.05 * a.median);
      }
    },
    300_000,
  );
});
