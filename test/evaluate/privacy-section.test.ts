/**
 * The evaluate config's privacy section on the bundled subset: membership inference (one cell,
 * equal to a direct `privacyEvaluation` with the config's seed), stealing curves behind each
 * victim output, MI-Face reconstructions beside class means; the report renders all three, and
 * config errors name their path.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { packageRoot } from '../../src/engine/paths.js';
import { type EvaluateConfigInput, parseEvaluateConfig } from '../../src/evaluate/config.js';
import { privacyEvaluation } from '../../src/evaluate/privacy-stage.js';
import { runEvaluation } from '../../src/evaluate/run.js';
import { renderReport } from '../../src/report/index.js';
import { privacyTable } from '../../src/report/privacy-section.js';

const root = packageRoot();
const membership = {
  pool: 80,
  population: 30,
  models: { referenceModels: 3, arch: 'mlp', epochs: 20, batchSize: 16, seed: 2 },
  queries: 'none' as const,
  attacks: [
    { name: 'loss', params: {} },
    { name: 'lira', params: {} },
    { name: 'lira', params: { fixedVariance: true } },
    { name: 'rmia', params: {} },
  ],
  outputs: ['none', 'labels-only'],
  labelOnly: [{ signal: 'noise' as const, params: { samples: 4, sigma: 0.2, seed: 0 } }],
};
const privacy = {
  dataset: 'fashion-mnist-subset',
  membership,
  stealing: {
    methods: [{ name: 'copycat', params: { arch: 'mlp', epochs: 1 } }],
    budgets: [20, 40],
    outputs: ['none', 'labels-only'],
    testN: 30,
    transferSteps: 2,
  },
  inversion: { params: { steps: 5, lr: 0.05 }, classes: [0, 1], meanExamples: 100 },
};
const raw: EvaluateConfigInput = {
  n: 10,
  seed: 7,
  models: [{ path: 'models/fmnist-mlp' }],
  attacks: [],
  honesty: { enabled: false },
  privacy,
};

describe('the privacy section', () => {
  it('runs as one cell, equals a direct run with the config seed, and renders', async () => {
    const config = parseEvaluateConfig(raw, root);
    const outDir = mkdtempSync(path.join(tmpdir(), 'parry-privacy-'));
    const before = tf.memory().numTensors;
    const results = await runEvaluation(config, { outDir });
    expect(tf.memory().numTensors).toBe(before);
    const p = results.privacy!;
    expect(p.dataset).toBe('fashion-mnist-subset');
    const m = p.membership!;
    expect(m.outputs.map((o) => o.output)).toEqual(['none', 'labels-only']);
    const direct = await privacyEvaluation(
      loadDataset(privacy.dataset, 'train', { seed: 7 }),
      loadDataset(privacy.dataset, 'test', { seed: 7 }),
      { ...membership, seed: 7 },
    );
    const auc = (r: typeof direct) => r.outputs.map((o) => o.attacks.map((a) => a.metrics.auc));
    expect(auc(m)).toEqual(auc(direct));
    expect(m.labelOnly[0].metrics).toEqual(direct.labelOnly[0].metrics);
    // Stealing: one row per method × output, one point per budget, queries within budget.
    expect(p.stealing.map((r) => [r.model, r.method, r.output])).toEqual([
      ['fmnist-mlp', 'copycat', 'none'],
      ['fmnist-mlp', 'copycat', 'labels-only'],
    ]);
    for (const r of p.stealing) {
      expect(r.curve.map((c) => c.budget)).toEqual([20, 40]);
      for (const c of r.curve) {
        expect(c.queriesUsed).toBeLessThanOrEqual(c.budget);
        expect(c.testExamples).toBe(30);
      }
    }
    // Inversion: one reconstruction and one class mean per class, as PNG data URIs.
    const [inv] = p.inversion;
    expect(inv.classes).toEqual([0, 1]);
    expect(inv.scores.map((s) => s.class)).toEqual([0, 1]);
    for (const uri of [...inv.images, ...inv.means])
      expect(uri).toMatch(/^data:image\/png;base64,/);

    const html = renderReport(results);
    expect(html).toContain('id="privacy"');
    expect(html).toContain('TPR at 0.1% FPR');
    expect(html).toContain('Membership inference — ROC, output: labels-only');
    expect(html).toContain('label-only-noise');
    // Two runs of one attack are told apart; what the attacks warned is listed under the table.
    const table = privacyTable(results);
    expect(table).toContain('<td>lira</td>');
    expect(table).toContain('<td>lira:fixedVariance=true</td>');
    expect(table).toContain(
      '<li>none, lira: per-example variances from 3 reference models are noisy',
    );
    expect(html).toContain('"series":"lira:fixedVariance=true"');
    expect(html).toContain('Model stealing — thief accuracy and agreement');
    expect(html).toContain('fmnist-mlp — MI-Face');
    // Plainly trained models say nothing of their training; DP-SGD ones give the target's ε.
    expect(privacyTable(results)).not.toContain('Every model trained');
    const dp = structuredClone(results);
    dp.privacy!.membership!.target.training = {
      defense: 'dp-sgd',
      noise_multiplier: 1.1,
      max_grad_norm: 1,
      epsilon: 2.4967,
      delta: 1e-5,
    };
    expect(privacyTable(dp)).toContain(
      "Every model trained with DP-SGD (σ 1.1, C 1): the target's ε = 2.50 at δ = 0.00001.",
    );
  }, 300_000);

  it('names the path of a bad attack, a bad option, a bad output chain', () => {
    const bad = (part: Record<string, unknown>) => () =>
      parseEvaluateConfig(
        { ...raw, privacy: { ...privacy, membership: { ...membership, ...part } } },
        root,
      );
    expect(bad({ attacks: [{ name: 'nope' }] })).toThrow(
      /privacy\.membership\.attacks\[0\]\.name.*unknown membership attack 'nope'/s,
    );
    expect(bad({ attacks: [{ name: 'lira', params: { wrong: 1 } }] })).toThrow(
      /privacy\.membership\.attacks\[0\]\.params/,
    );
    expect(bad({ outputs: ['none', 'no-such'] })).toThrow(/privacy\.membership\.outputs\[1\]/);
    expect(bad({ population: 0 })).toThrow(
      /privacy\.membership\.population.*rmia needs population/s,
    );
    const badSection = (part: Record<string, unknown>) => () =>
      parseEvaluateConfig({ ...raw, privacy: { ...privacy, ...part } }, root);
    expect(badSection({ stealing: { methods: [{ name: 'nope' }] } })).toThrow(
      /privacy\.stealing\.methods\[0\]\.name.*unknown stealing attack 'nope'/s,
    );
    expect(badSection({ stealing: { outputs: ['bad-chain'] } })).toThrow(
      /privacy\.stealing\.outputs\[0\]/,
    );
    expect(badSection({ inversion: { params: { steps: -1 } } })).toThrow(
      /privacy\.inversion\.params/,
    );
    expect(() =>
      parseEvaluateConfig({ ...raw, privacy: { dataset: 'fashion-mnist-subset' } }, root),
    ).toThrow(/give at least one of membership, stealing, inversion/);
  });
});
