/**
 * The evaluate config's privacy section on a small synthetic set: the membership evaluation runs
 * as one resumable cell, equals a direct `privacyEvaluation` with the config's seed, renders in
 * the report (table and log–log ROC charts), and config errors name their path.
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

const root = packageRoot();
const privacy = {
  dataset: 'synthetic:4x4x1:3:200',
  pool: 80,
  population: 30,
  models: { referenceModels: 3, arch: 'mlp', epochs: 20, batchSize: 16, seed: 2 },
  queries: 'none' as const,
  attacks: [
    { name: 'loss', params: {} },
    { name: 'lira', params: {} },
    { name: 'rmia', params: {} },
  ],
  outputs: ['none', 'labels-only'],
  labelOnly: [{ signal: 'noise' as const, params: { samples: 4, sigma: 0.2, seed: 0 } }],
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
    expect(p.dataset).toBe('synthetic:4x4x1:3:200');
    expect(p.outputs.map((o) => o.output)).toEqual(['none', 'labels-only']);
    const { dataset, ...rest } = privacy;
    const direct = await privacyEvaluation(
      loadDataset(dataset, 'train', { seed: 7 }),
      loadDataset(dataset, 'test', { seed: 7 }),
      { ...rest, seed: 7 },
    );
    const auc = (r: typeof direct) => r.outputs.map((o) => o.attacks.map((a) => a.metrics.auc));
    expect(auc(p)).toEqual(auc(direct));
    expect(p.labelOnly[0].metrics).toEqual(direct.labelOnly[0].metrics);

    const html = renderReport(results);
    expect(html).toContain('id="privacy"');
    expect(html).toContain('TPR at 0.1% FPR');
    expect(html).toContain('Membership inference — ROC, output: labels-only');
    expect(html).toContain('label-only-noise');
  }, 180_000);

  it('names the path of a bad attack, a bad option, a bad output chain', () => {
    const bad = (privacyPart: Record<string, unknown>) => () =>
      parseEvaluateConfig({ ...raw, privacy: { ...privacy, ...privacyPart } }, root);
    expect(bad({ attacks: [{ name: 'nope' }] })).toThrow(
      /privacy\.attacks\[0\]\.name.*unknown membership attack 'nope'/s,
    );
    expect(bad({ attacks: [{ name: 'lira', params: { wrong: 1 } }] })).toThrow(
      /privacy\.attacks\[0\]\.params/,
    );
    expect(bad({ outputs: ['none', 'no-such'] })).toThrow(/privacy\.outputs\[1\]/);
    expect(bad({ population: 0 })).toThrow(/privacy\.population.*rmia needs population/s);
  });
});
