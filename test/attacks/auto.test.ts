import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { autoAttack } from '../../src/attacks/evasion/auto.js';
import { perturbationNorms } from '../../src/attacks/evasion/projection.js';
import { findAttack } from '../../src/attacks/registry.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { ParryError } from '../../src/errors.js';
import type { Classifier } from '../../src/models/classifier.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';
import { MaskedClassifier, toArray, values } from './helpers.js';

async function predictions(model: Classifier, x: tf.Tensor): Promise<number[]> {
  const p = tf.tidy(() => tf.argMax(model.logits(x), 1));
  const out = toArray(p);
  p.dispose();
  return out;
}

describe('auto (AutoAttack-style ensemble)', () => {
  it('catches gradient masking with its black-box member and labels who broke what', async () => {
    const model = new MaskedClassifier();
    const x = tf.tensor(values(8 * 36, 11, 0.3, 0.7), [8, 6, 6, 1]);
    const labels = tf.tensor1d(await predictions(model, x), 'int32');
    const before = tf.memory().numTensors;
    const r = await autoAttack(model, x, labels, {
      eps: 0.25,
      steps: 10,
      numTargets: 3,
      maxQueries: 300,
      seed: 2,
    });
    // Gradients are zero: only APGD's random starts can land across the boundary. Square
    // finishes the examples they leave.
    const gradientOnly = await autoAttack(model, x, labels, {
      eps: 0.25,
      steps: 10,
      numTargets: 3,
      attacks: ['apgd-ce', 'apgd-t'],
      seed: 2,
    });
    disposeAttackResult(gradientOnly);
    expect(gradientOnly.brokenBy.filter((b) => b === null).length).toBeGreaterThan(2);
    expect(r.brokenBy.filter((b) => b === null)).toEqual([]);
    expect(r.brokenBy).toContain('square');
    const adv = await predictions(model, r.xAdv);
    const y = toArray(labels);
    r.brokenBy.forEach((b, i) => {
      if (b === null) expect(adv[i]).toBe(y[i]);
      else expect(adv[i]).not.toBe(y[i]);
    });
    const norms = perturbationNorms(r.xAdv, x, 'linf');
    for (const d of toArray(norms)) expect(d).toBeLessThanOrEqual(0.25 + 1e-6);
    // Members only attack what is left: counts add up.
    expect(r.members.map((m) => m.attack)).toEqual(['apgd-ce', 'apgd-t', 'square']);
    for (let m = 1; m < r.members.length; m++) {
      expect(r.members[m].attacked).toBe(r.members[m - 1].attacked - r.members[m - 1].broken);
    }
    expect(r.queries).toBeGreaterThan(0);
    norms.dispose();
    disposeAttackResult(r);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, labels]);
  });

  it('is never weaker than any of its members run alone', async () => {
    const model = new TfjsClassifier(
      buildArchitecture('cnn-small', { inputShape: [8, 8, 1], numClasses: 4, seed: 3 }),
    );
    const x = tf.tensor(values(12 * 64, 9), [12, 8, 8, 1]);
    const labels = tf.tensor1d(await predictions(model, x), 'int32');
    const params = { norm: 'linf' as const, eps: 0.02, steps: 10, maxQueries: 200 };
    const robust = async (name: string) => {
      const entry = findAttack(name)!;
      // The budget through the options each attack reads (it refuses the others).
      const own = Object.fromEntries(
        Object.entries(params).filter(([k]) => k in entry.schema.shape),
      ) as typeof params;
      const out = await entry.run(model, x, labels, { ...own, targeted: false, seed: 4 }, {});
      const adv = await predictions(model, out.xAdv);
      disposeAttackResult(out);
      return adv.filter((p, i) => p === toArray(labels)[i]).length;
    };
    const auto = await robust('auto');
    const members = await Promise.all(['apgd-ce', 'apgd-t', 'square'].map(robust));
    expect(auto).toBeLessThanOrEqual(Math.min(...members));
    // The budget is small enough that the ensemble has something to do.
    expect(Math.max(...members)).toBeGreaterThan(0);
    tf.dispose([x, labels]);
  });

  it('rejects a targeted run and bad configs', async () => {
    const model = new MaskedClassifier();
    const x = tf.zeros([1, 6, 6, 1]);
    const labels = tf.tensor1d([0], 'int32');
    await expect(
      findAttack('auto')!.run(
        model,
        x,
        labels,
        { norm: 'linf', eps: 0.1, targeted: true, seed: 0 },
        {},
      ),
    ).rejects.toThrow(ParryError);
    await expect(autoAttack(model, x, labels, { eps: 0.1, attacks: [] })).rejects.toThrow(
      /attacks/,
    );
    tf.dispose([x, labels]);
  });
});
