/**
 * One table-driven test over the attack registry: every attack, on every norm it supports, keeps
 * its output inside the model's bounds (and inside the eps-ball unless it is a minimum-norm
 * attack), returns x itself at eps = 0, measures its result consistently, leaves no tensors
 * behind, and refuses an unknown option and an option it does not read, naming both.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { perturbationNorms } from '../../src/attacks/evasion/projection.js';
import { ATTACKS, type AttackEntry } from '../../src/attacks/registry.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { ParryError } from '../../src/errors.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';
import { values } from './helpers.js';

const model = new TfjsClassifier(
  buildArchitecture('cnn-small', { inputShape: [8, 8, 1], numClasses: 4, seed: 3 }),
);
const x = tf.keep(tf.tensor(values(4 * 64, 9), [4, 8, 8, 1]));
const labels = tf.keep(tf.tensor1d([0, 1, 2, 3], 'int32'));

/** A small budget through the options the attack reads. */
function budget(attack: AttackEntry): Record<string, unknown> {
  const reads = (k: string) => k in attack.schema.shape;
  return {
    ...(reads('steps') ? { steps: 3 } : {}),
    ...(reads('deepfoolSteps') ? { deepfoolSteps: 3 } : {}),
    ...(reads('maxQueries') ? { maxQueries: 60 } : {}),
  };
}

/** An option some other attack reads and this one does not. */
function unreadOption(attack: AttackEntry): string {
  const mine = new Set(Object.keys(attack.schema.shape));
  const other = ATTACKS.flatMap((a) => Object.keys(a.schema.shape)).find((k) => !mine.has(k));
  if (other === undefined) throw new Error(`${attack.name} reads every option`);
  return other;
}

async function refusal(attack: AttackEntry, extra: Record<string, unknown>): Promise<ParryError> {
  const params = { norm: attack.norms[0], ...(attack.minimumNorm ? {} : { eps: 0.1 }), seed: 0 };
  const e = await attack.run(model, x, labels, { ...params, ...extra }, {}).catch((e) => e);
  expect(e).toBeInstanceOf(ParryError);
  return e as ParryError;
}

describe('attack registry', () => {
  for (const attack of ATTACKS) {
    it(`${attack.name} refuses an unknown option and one it does not read, naming both`, async () => {
      const before = tf.memory().numTensors;
      const unknown = await refusal(attack, { stpes: 3 });
      expect(unknown.code).toBe('BAD_OPTION');
      expect(unknown.message).toMatch(new RegExp(`^${attack.name}: stpes: unknown option`));
      expect(unknown.issues).toEqual([
        { path: ['stpes'], message: expect.stringMatching(/stpes/) },
      ]);
      const key = unreadOption(attack);
      const unread = await refusal(attack, { [key]: 1, alsoUnknown: true });
      expect(unread.message).toContain(`${attack.name} does not read '${key}'`);
      // Every issue, each with its path.
      expect(unread.issues.map((i) => i.path)).toEqual(
        expect.arrayContaining([[key], ['alsoUnknown']]),
      );
      expect(tf.memory().numTensors).toBe(before);
    });

    it(`${attack.name}'s schema parses its own defaults`, () => {
      const params = { norm: attack.norms[0], ...(attack.minimumNorm ? {} : { eps: 0.1 }) };
      expect(attack.schema.safeParse(params).success).toBe(true);
      expect(attack.requires.length).toBeGreaterThan(0);
    });

    for (const norm of attack.norms) {
      it(`${attack.name} (${norm}) stays in bounds${attack.minimumNorm ? '' : ' and in the ball'}`, async () => {
        const eps = norm === 'linf' ? 0.05 : 0.5;
        const before = tf.memory().numTensors;
        const params = {
          norm,
          ...(attack.minimumNorm ? {} : { eps }),
          ...budget(attack),
          targeted: false,
          seed: 1,
        };
        const out = await attack.run(model, x, labels, params, {});
        const [min, max] = [tf.min(out.xAdv), tf.max(out.xAdv)];
        expect(min.dataSync()[0]).toBeGreaterThanOrEqual(model.bounds[0]);
        expect(max.dataSync()[0]).toBeLessThanOrEqual(model.bounds[1]);
        // The measured fields agree with an independent computation.
        const norms = perturbationNorms(out.xAdv, x, norm);
        expect(Array.from(out.perturbationNorms.dataSync())).toEqual(Array.from(norms.dataSync()));
        const predicted = tf.tidy(() => tf.argMax(model.logits(out.xAdv), 1));
        expect(Array.from(out.predictions.dataSync())).toEqual(Array.from(predicted.dataSync()));
        const wrong = Array.from(predicted.dataSync()).map((p, i) => p !== i);
        expect(Array.from(out.success.dataSync()).map(Boolean)).toEqual(wrong);
        expect(out.seed).toBe(1);
        if (!attack.minimumNorm) {
          for (const d of norms.dataSync()) expect(d).toBeLessThanOrEqual(eps + 1e-6);
          const zero = await attack.run(model, x, labels, { ...params, eps: 0 }, {});
          expect(Array.from(zero.xAdv.dataSync())).toEqual(Array.from(x.dataSync()));
          disposeAttackResult(zero);
        }
        // Gradient attacks report gradients, black-box attacks queries.
        expect(out.gradientEvaluations + out.queries).toBeGreaterThan(0);
        tf.dispose([min, max, norms, predicted]);
        disposeAttackResult(out);
        expect(tf.memory().numTensors).toBe(before);
      });
    }
  }
});
