/**
 * The training-method registry, table-driven: every method refuses an unknown option and one it
 * does not read (naming both), parses its defaults from the options it requires, and every robust
 * method builds a loss whose seeded batch step leaves no tensor behind.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { TRAINING_METHODS } from '../../../src/defenses/training/registry.js';
import { ParryError } from '../../../src/errors.js';
import { buildArchitecture } from '../../../src/models/index.js';
import { parseEntryOptions } from '../../../src/options.js';

/** The options a method cannot go without. */
const REQUIRED: Record<string, Record<string, unknown>> = {
  ibp: { eps: 0.1 },
  'pgd-at': { eps: 0.1, attackSteps: 2 },
  'fast-at': { eps: 0.1 },
  trades: { eps: 0.1, attackSteps: 2 },
  mart: { eps: 0.1, attackSteps: 2 },
  'grad-reg': { lambda: 0.1 },
  'jacobian-reg': { lambda: 0.1 },
};

const allKeys = [...new Set(TRAINING_METHODS.flatMap((m) => Object.keys(m.schema.shape)))];

describe('training-method registry', () => {
  for (const method of TRAINING_METHODS) {
    const required = REQUIRED[method.name] ?? {};
    it(`${method.name} refuses an unknown option and one it does not read`, () => {
      const unread = allKeys.find((k) => !(k in method.schema.shape))!;
      for (const key of ['labelSmoothin', unread]) {
        let error: unknown;
        try {
          parseEntryOptions(method, { ...required, [key]: 1 });
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ParryError);
        expect((error as ParryError).message).toContain(`${method.name} does not read '${key}'`);
        expect((error as ParryError).issues[0].path).toEqual([key]);
      }
    });

    it(`${method.name} parses its defaults`, () => {
      const o = parseEntryOptions(method, required);
      expect(o.seed).toBe(0);
      if (method.kind === 'robust') expect(o.evalAttack).toBe('pgd');
    });

    if (method.kind === 'robust') {
      it(`${method.name} builds a loss whose batch step leaks nothing`, () => {
        const model = buildArchitecture('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 });
        const o = parseEntryOptions(method, { ...required, seed: 5 });
        const { training, name } = method.build!(o, [0, 1]);
        expect(name.length).toBeGreaterThan(0);
        const x = tf.randomUniform([4, 4, 4, 1], 0, 1, 'float32', 3);
        const labels = tf.tensor1d([0, 1, 2, 0], 'int32');
        const before = tf.memory().numTensors;
        const progress = { step: 0, totalSteps: 1 };
        const prepared = training.prepare?.(model, x, labels, progress);
        const loss = tf.tidy(() => training.lossFn(model, x, labels, progress, prepared).loss);
        expect(loss.shape).toEqual([4]);
        expect(Number.isFinite(loss.dataSync()[0])).toBe(true);
        tf.dispose([loss, ...(prepared ? [prepared] : [])]);
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose([x, labels]);
        model.dispose();
      });
    }
  }
});
