import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { membershipDesign } from '../../src/attacks/privacy/reference-models.js';
import { syntheticDataset } from '../../src/data/index.js';
import { buildOutputDefenses } from '../../src/defenses/output/index.js';
import { defendLogits, privacyEvaluation } from '../../src/evaluate/privacy-stage.js';

const strip = (r: Awaited<ReturnType<typeof privacyEvaluation>>) =>
  JSON.parse(
    JSON.stringify(r, (key, v) => (key === 'seconds' || /Seconds$/.test(key) ? undefined : v)),
  );

describe('privacyEvaluation', () => {
  it('trains target and references, attacks raw and defended outputs and label-only signals, reproducibly and without leaks', async () => {
    // Noisy labels-free synthetic data: a small MLP trained long on 40 examples memorises them.
    const train = syntheticDataset({
      shape: [4, 4, 1],
      numClasses: 3,
      n: 160,
      seed: 5,
      noise: 0.6,
    });
    const test = syntheticDataset({ shape: [4, 4, 1], numClasses: 3, n: 60, seed: 6, noise: 0.6 });
    const config = {
      pool: 80,
      population: 40,
      models: { referenceModels: 3, arch: 'mlp', epochs: 30, batchSize: 16, seed: 2 },
      queries: 'flip' as const,
      attacks: [
        { name: 'loss', params: {} },
        { name: 'lira', params: {} },
        { name: 'rmia', params: {} },
      ],
      outputs: ['none', 'labels-only'],
      labelOnly: [
        { signal: 'augmentation' as const, n: 40, references: 1 },
        { signal: 'noise' as const, params: { samples: 8, sigma: 0.3, seed: 1 }, references: 2 },
      ],
      seed: 3,
    };
    const before = tf.memory().numTensors;
    const stages = new Set<string>();
    const r = await privacyEvaluation(train, test, config, {
      onProgress: (p) => stages.add(p.stage),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect([...stages].sort()).toEqual(['attack', 'label-only', 'query', 'train']);
    // The target's half: every pool example is in ⌊4/2⌋ = 2 of the 4 models.
    const design = membershipDesign(80, 4, 2);
    expect(r.target.members).toBe(design[0].reduce((a, b) => a + b, 0));
    // It memorised its half (train accuracy above test accuracy).
    expect(r.target.trainAccuracy).toBeGreaterThan(r.target.testAccuracy);
    expect(r.outputs.map((o) => o.output)).toEqual(['none', 'labels-only']);
    for (const o of r.outputs) {
      expect(o.attacks.map((a) => a.attack)).toEqual(['loss', 'lira', 'rmia']);
      for (const a of o.attacks) {
        expect(a.metrics.members + a.metrics.nonMembers).toBe(80);
        expect(a.metrics.auc).toBeGreaterThanOrEqual(0);
        expect(a.metrics.auc).toBeLessThanOrEqual(1);
      }
    }
    // On raw scores of a memorising target, LiRA separates members.
    const lira = r.outputs[0].attacks[1];
    expect(lira.metrics.auc).toBeGreaterThan(0.6);
    expect(r.labelOnly.map((a) => [a.attack, a.candidates, a.references])).toEqual([
      ['label-only-augmentation', 40, 1],
      ['label-only-noise', 80, 2],
    ]);
    expect(r.labelOnly[0].queries).toBe(18);
    expect(r.labelOnly[1].queries).toBe(8);
    const again = await privacyEvaluation(train, test, config);
    expect(strip(again)).toEqual(strip(r));
  }, 120_000);

  it('refuses a pool larger than the data, rmia without population, and a bad output chain before training', async () => {
    const train = syntheticDataset({ shape: [4, 4, 1], numClasses: 3, n: 50, seed: 5 });
    await expect(privacyEvaluation(train, train, { pool: 60, population: 0 })).rejects.toThrow(
      /pool 60 \+ population 0 = 60 examples, but .* has 50/,
    );
    await expect(privacyEvaluation(train, train, { pool: 20, population: 0 })).rejects.toThrow(
      /rmia needs population samples/,
    );
    await expect(
      privacyEvaluation(train, train, { pool: 20, population: 10, outputs: ['no-such-defence'] }),
    ).rejects.toThrow(/no-such-defence/);
  });
});

describe('defendLogits', () => {
  it('passes raw logits through and turns a labels-only answer into floored log-probabilities', () => {
    const raw = [Float32Array.from([2, 0, -1, 0, 3, 1])];
    expect(defendLogits(raw, 3, [])).toBe(raw);
    const before = tf.memory().numTensors;
    const [out] = defendLogits(raw, 3, buildOutputDefenses('labels-only'));
    const floor = Math.log(1e-30);
    expect(Array.from(out)).toEqual([0, floor, floor, floor, 0, floor].map((v) => Math.fround(v)));
    const [top] = defendLogits(raw, 3, buildOutputDefenses('top-k:k=1'));
    expect(top[0]).toBeCloseTo(Math.log(Math.exp(2) / (Math.exp(2) + 1 + Math.exp(-1))), 5);
    expect(tf.memory().numTensors).toBe(before);
  });
});
