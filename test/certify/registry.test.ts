/**
 * The certificate registry, table-driven: every entry refuses an unknown option and one it does
 * not read (naming both), parses its defaults, and certifies a tiny data set with no leak.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { CERTIFICATES, runCertificate } from '../../src/certify/registry.js';
import { syntheticDataset } from '../../src/data/index.js';
import { ParryError } from '../../src/errors.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';

const data = syntheticDataset({ n: 6, shape: [4, 4, 1], numClasses: 3, seed: 2 });
const model = new TfjsClassifier(
  buildArchitecture('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 1 }),
);
const target = { model, modelDir: '(in memory)', data };
const minimal = (name: string) =>
  name === 'smoothing' ? { sigma: 0.25, n0: 10, n: 50 } : { eps: 0.01 };

describe('certificate registry', () => {
  for (const entry of CERTIFICATES) {
    it(`${entry.name} refuses an unknown option and one it does not read`, async () => {
      const unread = entry.name === 'smoothing' ? 'eps' : 'sigma';
      for (const [key, pattern] of [
        ['sigmaa', /unknown option/],
        [unread, new RegExp(`${entry.name} does not read '${unread}'`)],
      ] as const) {
        const e = await runCertificate(entry, { ...minimal(entry.name), [key]: 1 }, target).catch(
          (err) => err,
        );
        expect(e).toBeInstanceOf(ParryError);
        expect(e.message).toMatch(pattern);
        expect(e.issues[0].path).toEqual([key]);
      }
    });

    it(`${entry.name} parses its defaults and certifies a tiny set without leaks`, async () => {
      expect(entry.schema.safeParse(minimal(entry.name)).success).toBe(true);
      const before = tf.memory().numTensors;
      const r = await runCertificate(entry, { ...minimal(entry.name), seed: 3 }, target);
      expect(r.perExample).toHaveLength(6);
      expect(r.forwardPasses).toBeGreaterThan(0);
      expect(tf.memory().numTensors).toBe(before);
    });
  }
});
