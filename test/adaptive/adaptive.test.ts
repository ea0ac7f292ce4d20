import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { BpdaClassifier, EotClassifier } from '../../src/adaptive/index.js';
import { findAttack } from '../../src/attacks/registry.js';
import {
  createBitDepth,
  createJpeg,
  createNoise,
  createSmoothing,
  DefendedClassifier,
} from '../../src/defenses/preprocess/index.js';
import type { Classifier } from '../../src/models/classifier.js';
import { LinearClassifier, toArray, values } from '../attacks/helpers.js';

/** A 4-class linear model on [6, 6, 1]. */
function linear(): LinearClassifier {
  const w = values(36 * 4, 21, -1, 1);
  return new LinearClassifier(
    [6, 6, 1],
    Array.from({ length: 36 }, (_, i) => w.slice(i * 4, i * 4 + 4)),
    [0, 0.1, -0.1, 0.05],
  );
}

function lossGrad(model: Classifier, x: tf.Tensor, labels: tf.Tensor1D): number[] {
  const g = tf.tidy(() =>
    tf.grad((z: tf.Tensor) => tf.losses.softmaxCrossEntropy(tf.oneHot(labels, 4), model.logits(z)))(
      x,
    ),
  );
  const v = toArray(g);
  g.dispose();
  return v;
}

function predictions(model: Classifier, x: tf.Tensor): number[] {
  const p = tf.tidy(() => tf.argMax(model.logits(x), 1));
  const v = toArray(p);
  p.dispose();
  return v;
}

const close = (a: number[], b: number[], tol = 1e-5) => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(tol);
};

describe('DefendedClassifier, BPDA and EOT', () => {
  const base = linear();
  const x = tf.keep(tf.tensor4d(values(8 * 36, 5, 0.2, 0.8), [8, 6, 6, 1]));
  const labels = tf.keep(tf.tensor1d(predictions(base, x), 'int32'));

  it('logits are the base logits at the preprocessed point; the plain gradient is zero', () => {
    const defended = new DefendedClassifier(base, [
      createBitDepth({ bits: 3 }),
      createJpeg({ q: 80 }),
    ]);
    const before = tf.memory().numTensors;
    const [pre, plain, bpda, atPre] = tf.tidy(() => {
      const p = defended.preprocess(x);
      return [p, defended.logits(x), defended.bpdaLogits(x), base.logits(p)];
    });
    close(toArray(plain), toArray(atPre));
    // bpdaLogits has exactly the same forward value.
    expect(toArray(bpda)).toEqual(toArray(atPre));
    expect(lossGrad(defended, x, labels).every((v) => v === 0)).toBe(true);
    tf.dispose([pre, plain, bpda, atPre]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it("BPDA gradient equals the base model's gradient at the preprocessed point", () => {
    const defended = new DefendedClassifier(base, [
      createJpeg({ q: 60 }),
      createBitDepth({ bits: 4 }),
    ]);
    const bpda = new BpdaClassifier(defended);
    const pre = defended.preprocess(x);
    const g = lossGrad(bpda, x, labels);
    expect(g.some((v) => v !== 0)).toBe(true);
    close(g, lossGrad(base, pre, labels));
    pre.dispose();
  });

  it('BPDA keeps the gradient of differentiable steps (smoothing) exact', () => {
    const defended = new DefendedClassifier(base, [createSmoothing({ k: 3 })]);
    close(lossGrad(new BpdaClassifier(defended), x, labels), lossGrad(defended, x, labels), 1e-6);
  });

  it('EOT over a deterministic transform equals the plain gradient; seeded over a random one', () => {
    const smooth = new DefendedClassifier(base, [createSmoothing({ k: 3 })]);
    const eot = new EotClassifier(smooth, { samples: 3 });
    close(lossGrad(eot, x, labels), lossGrad(smooth, x, labels), 1e-5);
    const noisy = new DefendedClassifier(base, [createNoise({ sigma: 0.1 })]);
    const g1 = lossGrad(new EotClassifier(noisy, { samples: 4, seed: 3 }), x, labels);
    const g2 = lossGrad(new EotClassifier(noisy, { samples: 4, seed: 3 }), x, labels);
    const g3 = lossGrad(new EotClassifier(noisy, { samples: 4, seed: 4 }), x, labels);
    expect(g1).toEqual(g2);
    expect(g1).not.toEqual(g3);
    const before = tf.memory().numTensors;
    tf.dispose(new EotClassifier(noisy, { samples: 2 }).logits(x));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('EOT averages draws: its logits approach the expectation as samples grow', () => {
    const noisy = new DefendedClassifier(base, [createNoise({ kind: 'uniform', sigma: 0.05 })]);
    const l1 = toArray(new EotClassifier(noisy, { samples: 1, seed: 1 }).logits(x));
    const l64 = toArray(new EotClassifier(noisy, { samples: 64, seed: 1 }).logits(x));
    // The noise is symmetric and the model linear (bounds rarely bind at 0.2..0.8 ± 0.05).
    const clean = toArray(base.logits(x));
    const err = (a: number[]) => a.reduce((s, v, i) => s + Math.abs(v - clean[i]), 0);
    expect(err(l64)).toBeLessThan(err(l1));
  });

  it('bit-depth squeezing: PGD through zero gradients fails, BPDA-PGD succeeds', async () => {
    const defended = new DefendedClassifier(base, [createBitDepth({ bits: 3 })]);
    const pgd = findAttack('pgd')!;
    const params = { norm: 'linf' as const, eps: 0.25, steps: 20, targeted: false, seed: 1 };
    const robust = async (attacker: Classifier, randomStart: boolean) => {
      const r = await pgd.run(attacker, x, labels, { ...params, randomStart }, {});
      const adv = predictions(defended, r.xAdv);
      r.xAdv.dispose();
      const y = toArray(labels);
      return adv.filter((p, i) => p === y[i]).length / y.length;
    };
    const cleanDefended = predictions(defended, x).filter((p, i) => p === toArray(labels)[i]);
    expect(cleanDefended.length).toBeGreaterThanOrEqual(6);
    const plain = await robust(defended, false);
    const adaptive = await robust(new BpdaClassifier(defended, { seed: 1 }), false);
    expect(plain).toBeGreaterThanOrEqual(cleanDefended.length / 8);
    expect(adaptive).toBe(0);
    // With a random start the non-adaptive attack gets lucky at most; never stronger.
    expect(adaptive).toBeLessThanOrEqual(await robust(defended, true));
  });
});
