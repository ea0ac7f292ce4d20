/**
 * `parry train --dp`: DP-SGD on the bundled tiny data set writes ε (both conversions), the noise
 * multiplier, clipping norm, sample rate, steps and δ to training.json; ε is the accountant's for
 * the steps taken; DP options without --dp, --dp without σ, bad σ/δ and --dp with a robust defense
 * exit 2 with one line. Runs the compiled CLI (build first).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { epsilonFor } from '../../src/defenses/privacy/index.js';
import { expectBadInput, parry } from './helpers.js';

const outDir = (tag: string) => join(mkdtempSync(join(tmpdir(), `parry-${tag}-`)), 'm');
// 256 examples of the bundled Fashion-MNIST subset, batches of 32 in expectation: 8 steps an epoch.
const tiny = [
  '--dataset',
  'fashion-mnist-subset',
  '--n',
  '256',
  '--batch-size',
  '32',
  '--epochs',
  '1',
];

describe('parry train --dp', () => {
  it('writes ε at δ and the DP-SGD parameters to training.json', () => {
    const out = outDir('dp');
    const r = parry(
      'train',
      ...tiny,
      '--arch',
      'cnn-tiny',
      '--optimizer',
      'sgd',
      '--lr',
      '0.1',
      '--dp',
      '--noise-multiplier',
      '1.1',
      '--max-grad-norm',
      '1.5',
      '--delta',
      '1e-5',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const saved = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8'));
    expect(saved).toEqual(JSON.parse(r.stdout));
    expect(saved.defense).toBe('dp-sgd');
    expect(saved.workers).toBe(1);
    const dp = saved['dp-sgd'];
    expect(dp).toMatchObject({
      noise_multiplier: 1.1,
      max_grad_norm: 1.5,
      sample_rate: 0.125,
      expected_batch_size: 32,
      steps: 8,
      delta: 1e-5,
      clipping: 'fast',
      layers: {
        conv1: 'per-example',
        conv2: 'per-example',
        dense1: 'ghost-norm',
        logits: 'ghost-norm',
      },
    });
    const expected = epsilonFor({ noiseMultiplier: 1.1, sampleRate: 0.125, steps: 8, delta: 1e-5 });
    expect(dp.epsilon).toBeCloseTo(expected.epsilon, 10);
    expect(dp.epsilon_balle).toBeCloseTo(expected.epsilonBalle, 10);
    expect(dp.epsilon).toBeGreaterThan(0);
    expect(saved.per_epoch[0].epsilon).toBeCloseTo(expected.epsilon, 10);
    expect(saved.test_accuracy).toBeGreaterThanOrEqual(0);
    expect(r.stderr).toMatch(/epsilon/);
  });

  it('refuses DP options without --dp, --dp without σ, bad σ or δ, and --dp with a defense', () => {
    const out = outDir('dp-bad');
    const base = ['train', ...tiny, '--arch', 'mlp', '--out', out];
    expectBadInput(parry(...base, '--noise-multiplier', '1'), /--noise-multiplier needs --dp/);
    expectBadInput(parry(...base, '--delta', '1e-5'), /--delta needs --dp/);
    expectBadInput(parry(...base, '--dp'), /--dp needs --noise-multiplier/);
    expectBadInput(
      parry(...base, '--dp', '--noise-multiplier', '0'),
      /--noise-multiplier.*positive/,
    );
    expectBadInput(
      parry(...base, '--dp', '--noise-multiplier', '1', '--delta', '1'),
      /--delta.*\(0, 1\)/,
    );
    expectBadInput(
      parry(...base, '--dp', '--noise-multiplier', '1', '--defense', 'pgd-at', '--eps', '0.1'),
      /--dp .*--defense pgd-at/,
    );
  });
});
