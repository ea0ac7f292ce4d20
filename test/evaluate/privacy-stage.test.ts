import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { membershipDesign } from '../../src/attacks/privacy/reference-models.js';
import { syntheticDataset } from '../../src/data/index.js';
import { buildOutputDefenses } from '../../src/defenses/output/index.js';
import { epsilonFor } from '../../src/defenses/privacy/rdp-accountant.js';
import { WorkerPool } from '../../src/engine/pool.js';
import { populationRecipe } from '../../src/evaluate/privacy-population.js';
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

describe('the population training recipe', () => {
  const train = syntheticDataset({ shape: [4, 4, 1], numClasses: 3, n: 160, seed: 5, noise: 0.6 });
  const test = syntheticDataset({ shape: [4, 4, 1], numClasses: 3, n: 60, seed: 6, noise: 0.6 });
  const base = {
    pool: 80,
    population: 0,
    models: { referenceModels: 3, arch: 'mlp', epochs: 30, batchSize: 16, seed: 2 },
    queries: 'none' as const,
    attacks: [{ name: 'lira', params: {} }],
    seed: 3,
  };

  it('trains every model with DP-SGD: the accountant’s ε for its steps, and less leakage', async () => {
    const plain = await privacyEvaluation(train, test, base);
    const before = tf.memory().numTensors;
    const dp = await privacyEvaluation(train, test, {
      ...base,
      models: { ...base.models, optimizer: 'sgd', lr: 0.5 },
      training: { dp: { noiseMultiplier: 4, maxGradNorm: 1 } },
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(plain.target.training).toEqual({});
    // Every model trains on 40 of the 80 pool examples: q = 16/40, 30 epochs of ⌈40/16⌉ = 3 steps.
    const expected = epsilonFor({
      noiseMultiplier: 4,
      sampleRate: 16 / 40,
      steps: 90,
      delta: 1e-5,
    });
    const t = dp.target.training as Record<string, number | string>;
    expect(t.defense).toBe('dp-sgd');
    expect(t.steps).toBe(90);
    expect(t.epsilon as number).toBeCloseTo(expected.epsilon, 10);
    // Plain training memorises (LiRA separates members); heavy noise leaves little to find.
    expect(plain.outputs[0].attacks[0].metrics.auc).toBeGreaterThan(0.6);
    expect(dp.outputs[0].attacks[0].metrics.auc).toBeLessThan(
      plain.outputs[0].attacks[0].metrics.auc - 0.05,
    );
  }, 120_000);

  it('trains the models as jobs on a worker pool, two at a time, with the same results', async () => {
    const config = {
      ...base,
      models: { ...base.models, epochs: 5, optimizer: 'sgd' as const, lr: 0.5 },
      training: { dp: { noiseMultiplier: 1, maxGradNorm: 1 } },
    };
    const here = await privacyEvaluation(train, test, config);
    const pool = new WorkerPool({ workers: 2 });
    const done: number[] = [];
    try {
      const before = tf.memory().numTensors;
      const pooled = await privacyEvaluation(train, test, config, {
        pool,
        onProgress: (p) => {
          if (p.stage === 'train') done.push(p.done);
        },
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(strip(pooled)).toEqual(strip(here));
    } finally {
      await pool.close();
    }
    expect(done.at(-1)).toBe(4);
    expect(done).toEqual([...done].sort((a, b) => a - b));
  }, 120_000);

  it('trains every model with a robust training method, and refuses what it cannot take', async () => {
    const recipe = populationRecipe(
      { defense: 'pgd-at', params: { eps: 0.1, attackSteps: 2 } },
      16,
    )!;
    expect(recipe).toBeDefined();
    const at = await privacyEvaluation(train, test, {
      ...base,
      models: { ...base.models, referenceModels: 1, epochs: 3 },
      attacks: [{ name: 'loss', params: {} }],
      training: { defense: 'pgd-at', params: { eps: 0.1, attackSteps: 2 } },
    });
    const plain = await privacyEvaluation(train, test, {
      ...base,
      models: { ...base.models, referenceModels: 1, epochs: 3 },
      attacks: [{ name: 'loss', params: {} }],
    });
    const t = at.target.training as Record<string, unknown>;
    expect(t.defense).toBe('pgd-at');
    expect(t.eps).toBe(0.1);
    // Same seeds, same halves: only the adversarial loss can make the models differ.
    const outcome = (r: typeof at) => [r.target.trainAccuracy, r.outputs[0].attacks[0].metrics.auc];
    expect(outcome(at)).not.toEqual(outcome(plain));
    expect(populationRecipe({ defense: 'none', params: {} }, 16)).toBeUndefined();
    expect(() => populationRecipe({ defense: 'ibp', params: {} }, 16)).toThrow(
      /training method 'ibp' is not supported/,
    );
    expect(() => populationRecipe({ defense: 'pgd-at', params: { epz: 1 } }, 16)).toThrow(/epz/);
    await expect(
      privacyEvaluation(train, test, {
        ...base,
        training: { defense: 'pgd-at', dp: { noiseMultiplier: 1, maxGradNorm: 1 } },
      }),
    ).rejects.toThrow(/does not combine with a defense/);
  }, 120_000);
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
