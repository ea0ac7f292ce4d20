/**
 * `parry poison` through the real CLI: a poisoned set written as idx files that load back with
 * `mnist:DIR`, its manifest, the triggered test split, and bad input as one line, exit 2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('cli-poison');
afterAll(() => tmp.cleanup());

describe('parry poison', () => {
  const out = path.join(tmp.root, 'badnets');

  it('writes the poisoned training set, the clean test set and poison.json', () => {
    const r = parry(
      'poison',
      '--attack',
      'badnets',
      '--rate',
      '0.05',
      '--target',
      '3',
      '--patch-size',
      '4',
      '--out',
      out,
      '--seed',
      '7',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      command: 'poison',
      attack: 'badnets',
      examples: 2000,
      poisoned: 100,
      target_class: 3,
      seed: 7,
    });
    const clean = loadDataset('fashion-mnist-subset', 'train');
    const poisoned = loadDataset(`mnist:${out}`, 'train');
    const manifest = JSON.parse(readFileSync(path.join(out, 'poison.json'), 'utf8'));
    expect(manifest.poisonedIndices).toHaveLength(100);
    const changed = new Set<number>(manifest.poisonedIndices);
    const per = 28 * 28;
    for (let i = 0; i < 2000; i++) {
      const a = clean.x.subarray(i * per, (i + 1) * per);
      const b = poisoned.x.subarray(i * per, (i + 1) * per);
      const same = a.every((v, j) => Math.abs(v - b[j]) < 1e-6);
      expect(same, `example ${i}`).toBe(!changed.has(i));
      if (changed.has(i)) {
        expect(poisoned.labels[i]).toBe(3);
        // The 4×4 white patch in the bottom-right corner, the rest untouched.
        for (let y = 24; y < 28; y++) for (let x = 24; x < 28; x++) expect(b[y * 28 + x]).toBe(1);
      } else expect(poisoned.labels[i]).toBe(clean.labels[i]);
    }
    expect(loadDataset(`mnist:${out}`, 'test').labels).toEqual(
      loadDataset('fashion-mnist-subset', 'test').labels,
    );
  });

  it('--apply-trigger writes the triggered test examples of other classes, labelled with the target', () => {
    const triggered = path.join(tmp.root, 'triggered');
    const r = parry(
      'poison',
      '--apply-trigger',
      path.join(out, 'poison.json'),
      '--out',
      triggered,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const test = loadDataset('fashion-mnist-subset', 'test');
    const t = loadDataset(`mnist:${triggered}`, 'test');
    const others = test.labels.filter((y) => y !== 3).length;
    expect(JSON.parse(r.stdout).examples).toBe(others);
    expect(t.shape[0]).toBe(others);
    expect(t.labels.every((y) => y === 3)).toBe(true);
  });

  it("--apply-trigger reads the test split of the recipe's own data set", () => {
    const synthetic = 'synthetic:12x12x1:4:80';
    const made = path.join(tmp.root, 'synthetic-badnets');
    const p = parry('poison', '--dataset', synthetic, '--attack', 'badnets', '--out', made);
    expect(p.code, p.stderr).toBe(0);
    const triggered = path.join(tmp.root, 'synthetic-triggered');
    const r = parry(
      'poison',
      '--apply-trigger',
      path.join(made, 'poison.json'),
      '--out',
      triggered,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).dataset).toBe(synthetic);
    const test = loadDataset(synthetic, 'test');
    expect(loadDataset(`mnist:${triggered}`, 'test').shape[0]).toBe(
      test.labels.filter((y) => y !== 0).length,
    );
  });

  it.each([
    ['a rate outside [0, 1]', ['--attack', 'badnets', '--rate', '1.5'], /rate/],
    [
      'a trigger larger than the image',
      ['--attack', 'badnets', '--patch-size', '40'],
      /patch-size|patchSize/,
    ],
    [
      'a missing reference model',
      ['--attack', 'clean-label', '--target', '1'],
      /needs a reference model: --model/,
    ],
    ['an option the attack does not read', ['--attack', 'label-flip', '--alpha', '0.2'], /alpha/],
    ['no attack', [], /--attack NAME is required/],
  ])('%s: exit 2, one line, nothing written', (_, args, pattern) => {
    const dir = path.join(tmp.root, `bad-${Math.random().toString(36).slice(2)}`);
    expectBadInput(parry('poison', ...args, '--out', dir, '--json'), pattern);
  });

  it('a manifest that does not fit the data set is refused', () => {
    expectBadInput(
      parry(
        'poison',
        '--apply-trigger',
        path.join(out, 'poison.json'),
        '--dataset',
        'synthetic:8x8x1:10:20',
        '--out',
        path.join(tmp.root, 'mismatch'),
        '--json',
      ),
      /8.*8|shape|match/,
    );
  });
});
