/**
 * DetectingClassifier: the reject class wins exactly when the detector fires, no leaks; the joint
 * adaptive attack is never weaker than plain PGD against the detecting classifier.
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJointAttack } from '../../../src/adaptive/joint.js';
import { findAttack } from '../../../src/attacks/registry.js';
import {
  DetectingClassifier,
  type Detector,
  detectionAccuracy,
  LidDetector,
  MahalanobisDetector,
} from '../../../src/defenses/detection/index.js';
import { syntheticSet, tinyModel, trainTiny } from './helpers.js';

const model = tinyModel();
let train: ReturnType<typeof syntheticSet>;
let test: ReturnType<typeof syntheticSet>;
const detector = new MahalanobisDetector();

beforeAll(async () => {
  train = syntheticSet(240, 11);
  test = syntheticSet(60, 12);
  await trainTiny(model, train.x, train.labels);
  await detector.fit(model, train.x, train.labels);
  detector.calibrate(train.x, 0.05);
});
afterAll(() => {
  tf.dispose([train.x, train.adv, train.labels, test.x, test.adv, test.labels]);
  detector.dispose();
});

async function argmax(logits: tf.Tensor2D): Promise<number[]> {
  const p = tf.argMax(logits, 1);
  const out = Array.from(await p.data());
  tf.dispose([p, logits]);
  return out;
}

describe('DetectingClassifier', () => {
  it('adds a reject class that wins exactly when the detector fires, and leaks nothing', async () => {
    const defended = new DetectingClassifier(model, detector);
    expect(defended.numClasses).toBe(3);
    expect(defended.rejectLabel).toBe(2);
    const x = tf.concat([test.x, test.adv]);
    const before = tf.memory().numTensors;
    const logits = defended.logits(x);
    expect(logits.shape).toEqual([120, 3]);
    const pred = await argmax(logits);
    const base = await argmax(model.logits(x));
    expect(tf.memory().numTensors).toBe(before);
    const fired = detector.detect(x);
    expect(fired.slice(60).filter(Boolean).length).toBeGreaterThan(55); // shifted inputs flagged
    for (let i = 0; i < 120; i++) expect(pred[i]).toBe(fired[i] ? 2 : base[i]);
    // Gradients flow through the reject logit without leaking.
    const g = tf.grad((v: tf.Tensor) => tf.sum(defended.logits(v)))(test.x);
    g.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });

  it('a score declared non-differentiable contributes a zero gradient; LID contributes its own', async () => {
    const lid = new LidDetector({ k: 10, referenceSize: 80 });
    await lid.fit(model, train.x, train.labels, train.adv);
    lid.calibrate(test.x, 0.1);
    // The same detector, declared opaque (as a user's non-differentiable detector would be).
    const opaque = Object.create(lid, { gradient: { value: 'none' } }) as Detector;
    const gradOf = (d: Detector) =>
      tf.grad((v: tf.Tensor) => tf.sum(new DetectingClassifier(model, d).logits(v)))(test.x);
    // Without the score, the logits' sum is Σz + max z (the reject logit's other part).
    const base = tf.grad((v: tf.Tensor) => {
      const z = model.logits(v);
      return tf.add(tf.sum(z), tf.sum(tf.max(z, 1)));
    })(test.x);
    const gOpaque = gradOf(opaque);
    const gLid = gradOf(lid);
    const diff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
    expect(diff(gOpaque, base)).toBeLessThan(1e-5);
    expect(diff(gLid, base)).toBeGreaterThan(1e-3);
    tf.dispose([base, gOpaque, gLid]);
    lid.dispose();
  });

  it('refuses an uncalibrated detector', () => {
    expect(() => new DetectingClassifier(model, new MahalanobisDetector())).toThrow(
      /calibrate first/,
    );
  });

  it('counts a rejected adversarial example as defended', () => {
    const r = detectionAccuracy([0, 1, 0, 1], [0, 1, 2, 1], [2, 0, 0, 1], 2);
    expect(r).toEqual({
      cleanAccuracy: 0.75,
      robustAccuracy: 0.75,
      rejected: 0.25,
      attackSuccessRate: 0.25,
    });
  });
});

describe('joint adaptive attack', () => {
  it('is never weaker than plain PGD against the detecting classifier', async () => {
    const defended = new DetectingClassifier(model, detector);
    const labels = await test.labels.data();
    for (const eps of [0.3, 0.5]) {
      const plain = await findAttack('pgd')!.run(
        defended,
        test.x,
        test.labels,
        { norm: 'linf', eps, steps: 20, targeted: false, seed: 3 },
        {},
      );
      const cleanPred = await argmax(defended.logits(test.x));
      const plainPred = await argmax(defended.logits(plain.xAdv));
      const plainAcc = detectionAccuracy(labels, cleanPred, plainPred, 2);
      const before = tf.memory().numTensors;
      const joint = await createJointAttack({ eps, steps: 20, seed: 3 })(
        model,
        detector,
        test.x,
        test.labels,
      );
      expect(tf.memory().numTensors).toBe(before + 1);
      const jointPred = await argmax(defended.logits(joint.xAdv));
      const jointAcc = detectionAccuracy(labels, cleanPred, jointPred, 2);
      // Its own success flags agree with the detecting classifier's verdict.
      joint.success.forEach((ok, i) => {
        expect(ok).toBe(jointPred[i] !== labels[i] && jointPred[i] !== 2);
      });
      expect(jointAcc.robustAccuracy).toBeLessThanOrEqual(plainAcc.robustAccuracy);
      const d = tf.max(tf.abs(tf.sub(joint.xAdv, test.x)));
      expect((await d.data())[0]).toBeLessThanOrEqual(eps + 1e-6);
      console.log(
        `eps ${eps}: plain robust ${plainAcc.robustAccuracy}, joint robust ${jointAcc.robustAccuracy}`,
      );
      tf.dispose([d, plain.xAdv, joint.xAdv]);
    }
  });
});
