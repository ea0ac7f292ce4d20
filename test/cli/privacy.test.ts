/**
 * `parry privacy` through the built CLI on the bundled subset, kept tiny: one JSON object whose
 * privacy.json copy is equal, every attack under each output, label-only rows; bad input as one
 * line, exit 2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('cli-privacy');
afterAll(() => tmp.cleanup());

describe('parry privacy', () => {
  it('runs the attacks on raw and labels-only outputs and writes privacy.json', () => {
    const out = path.join(tmp.root, 'p');
    const r = parry(
      'privacy',
      '--pool',
      '60',
      '--population',
      '20',
      '--reference-models',
      '3',
      '--arch',
      'mlp',
      '--epochs',
      '2',
      '--queries',
      'none',
      '--attacks',
      'loss,lira,rmia',
      '--output',
      'labels-only',
      '--label-only',
      'noise',
      '--label-only-n',
      '20',
      '--workers',
      '1',
      '--seed',
      '4',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0]);
    expect(record.command).toBe('privacy');
    expect(record.pool).toBe(60);
    expect(record.config.models).toMatchObject({
      referenceModels: 3,
      arch: 'mlp',
      epochs: 2,
      seed: 4,
    });
    expect(record.outputs.map((o: { output: string }) => o.output)).toEqual([
      'none',
      'labels-only',
    ]);
    for (const o of record.outputs) {
      expect(o.attacks.map((a: { attack: string }) => a.attack)).toEqual(['loss', 'lira', 'rmia']);
    }
    expect(record.labelOnly).toHaveLength(1);
    expect(record.labelOnly[0]).toMatchObject({ attack: 'label-only-noise', candidates: 20 });
    const { engine: _, ...written } = record;
    const file = JSON.parse(readFileSync(path.join(out, 'privacy.json'), 'utf8'));
    delete file.engine;
    expect(file).toEqual(written);
  }, 120_000);

  it('trains every model with DP-SGD or a robust training method from the flags', () => {
    const small = ['--pool', '40', '--population', '0', '--reference-models', '1', '--arch', 'mlp'];
    const common = [...small, '--epochs', '1', '--queries', 'none', '--attacks', 'loss'];
    const dp = parry(
      'privacy',
      ...common,
      '--batch-size',
      '8',
      '--optimizer',
      'sgd',
      '--lr',
      '0.1',
      '--dp',
      '--noise-multiplier',
      '1.5',
      '--attacks',
      'loss,shadow:perClass=false,hidden=0',
      '--workers',
      '1',
      '--json',
    );
    expect(dp.code, dp.stderr).toBe(0);
    const d = JSON.parse(dp.stdout);
    expect(d.config.models.optimizer).toBe('sgd');
    expect(d.config.attacks).toEqual([
      { name: 'loss', params: {} },
      { name: 'shadow', params: { perClass: false, hidden: 0 } },
    ]);
    expect(d.config.training).toMatchObject({
      defense: 'none',
      dp: { noiseMultiplier: 1.5, maxGradNorm: 1 },
    });
    expect(d.target.training).toMatchObject({ defense: 'dp-sgd', noise_multiplier: 1.5 });
    expect(d.target.training.epsilon).toBeGreaterThan(0);
    const at = parry(
      'privacy',
      ...common,
      '--batch-size',
      '10',
      '--defense',
      'pgd-at',
      '--eps',
      '0.05',
      '--attack-steps',
      '2',
      '--workers',
      '1',
      '--json',
    );
    expect(at.code, at.stderr).toBe(0);
    const a = JSON.parse(at.stdout);
    expect(a.config.training).toEqual({ defense: 'pgd-at', params: { eps: 0.05, attackSteps: 2 } });
    expect(a.target.training).toMatchObject({ defense: 'pgd-at', eps: 0.05 });
  }, 120_000);

  it('refuses bad input with one line, exit 2', () => {
    expectBadInput(parry('privacy', '--pool', '0'), /--pool/);
    expectBadInput(parry('privacy', '--attacks', 'lira,nope'), /unknown membership attack 'nope'/);
    expectBadInput(
      parry('privacy', '--pool', '100000', '--population', '0', '--attacks', 'loss'),
      /pool 100000 \+ population 0/,
    );
    expectBadInput(parry('privacy', '--dp', '--noise-multiplier', '0'), /--noise-multiplier/);
    expectBadInput(parry('privacy', '--dp'), /--dp needs --noise-multiplier/);
    expectBadInput(parry('privacy', '--attacks', 'hidden=0,loss'), /comes before any attack name/);
    expectBadInput(parry('privacy', '--attacks', 'lira:fixedVariance'), /expected key=value/);
    expectBadInput(parry('privacy', '--max-grad-norm', '1'), /--max-grad-norm needs --dp/);
    expectBadInput(parry('privacy', '--dp', '--noise-multiplier', '1', '--delta', '1'), /--delta/);
    expectBadInput(
      parry('privacy', '--defense', 'pgd-at', '--dp', '--noise-multiplier', '1'),
      /does not combine with --defense pgd-at/,
    );
  });
});
