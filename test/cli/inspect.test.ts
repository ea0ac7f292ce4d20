/**
 * `parry inspect` through the real CLI: label flips found by deep k-NN on a model trained on the
 * flipped set, the scores recomputed from the flagged indices and the recipe, the filtered set
 * and its renumbered recipe written with --out, and bad input as one line, exit 2.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/index.js';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('cli-inspect');
afterAll(() => tmp.cleanup());
const poisoned = path.join(tmp.root, 'flip');
const model = path.join(tmp.root, 'model');
const manifestFile = path.join(poisoned, 'poison.json');

beforeAll(() => {
  const p = parry(
    'poison',
    '--attack',
    'label-flip',
    '--rate',
    '0.1',
    '--out',
    poisoned,
    '--seed',
    '3',
  );
  expect(p.code, p.stderr).toBe(0);
  const t = parry(
    'train',
    '--dataset',
    `mnist:${poisoned}`,
    '--arch',
    'mlp',
    '--epochs',
    '2',
    '--seed',
    '1',
    '--workers',
    '1',
    '--out',
    model,
  );
  expect(t.code, t.stderr).toBe(0);
}, 120_000);

describe('parry inspect', () => {
  it('deep k-NN finds flipped labels; scores agree with the flags; --out writes the rest', () => {
    const out = path.join(tmp.root, 'clean');
    const r = parry(
      'inspect',
      '--model',
      model,
      '--dataset',
      `mnist:${poisoned}`,
      '--method',
      'knn',
      '--k',
      '20',
      '--poison-manifest',
      manifestFile,
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    const truth = new Set<number>(manifest.poisonedIndices);
    const flagged: number[] = result.flagged_indices;
    const hits = flagged.filter((i) => truth.has(i)).length;
    expect(result).toMatchObject({
      command: 'inspect',
      method: 'knn',
      examples: 2000,
      poisoned: 200,
      flagged: flagged.length,
      options: { k: 20 },
    });
    expect(result.precision).toBeCloseTo(hits / flagged.length, 12);
    expect(result.recall).toBeCloseTo(hits / 200, 12);
    expect(result.false_positive_rate).toBeCloseTo((flagged.length - hits) / 1800, 12);
    // Flipped labels disagree with their neighbourhoods: nearly all are found; clean examples of
    // the classes Fashion-MNIST confuses (shirt, T-shirt, pullover, coat) are flagged too.
    expect(result.recall).toBeGreaterThan(0.9);
    expect(result.auc).toBeGreaterThan(0.95);
    expect(result.false_positive_rate).toBeLessThan(0.3);

    const before = loadDataset(`mnist:${poisoned}`, 'train');
    const after = loadDataset(`mnist:${out}`, 'train');
    const removed = new Set(flagged);
    const kept = Array.from({ length: 2000 }, (_, i) => i).filter((i) => !removed.has(i));
    expect(after.shape[0]).toBe(kept.length);
    const per = 28 * 28;
    for (const [k, i] of kept.entries()) {
      expect(after.labels[k]).toBe(before.labels[i]);
      expect(after.x[k * per + 400]).toBeCloseTo(before.x[i * per + 400], 6);
    }
    // The recipe, renumbered: the poisons left are the unflagged ones, at their new places.
    const left = JSON.parse(readFileSync(path.join(out, 'poison.json'), 'utf8'));
    const expected = kept.flatMap((i, k) => (truth.has(i) ? [k] : []));
    expect(left.poisonedIndices).toEqual(expected);
    expect(left.dataset.shape[0]).toBe(kept.length);
    const record = JSON.parse(readFileSync(path.join(out, 'inspection.json'), 'utf8'));
    expect(record.removed).toEqual(flagged);
  });

  it('loss filtering warms a fresh copy up and flags the requested fraction', () => {
    const r = parry(
      'inspect',
      '--model',
      model,
      '--dataset',
      `mnist:${poisoned}`,
      '--method',
      'loss',
      '--fraction',
      '0.1',
      '--warmup-epochs',
      '1',
      '--workers',
      '1',
      '--poison-manifest',
      manifestFile,
      '--seed',
      '2',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.flagged).toBe(200);
    expect(result.options).toMatchObject({ fraction: 0.1, warmupEpochs: 1, seed: 2 });
    // One epoch on 2,000 images: flipped labels already stand out.
    expect(result.recall).toBeGreaterThan(0.5);
  });

  it.each([
    ['an option the method does not read', ['--method', 'loss', '--k', '5'], /k/],
    ['no method', [], /method/],
    ['a bad option value', ['--method', 'ac', '--dims', '0'], /dims/],
  ])('%s: exit 2, one line', (_, args, pattern) => {
    expectBadInput(
      parry('inspect', '--model', model, '--dataset', `mnist:${poisoned}`, ...args, '--json'),
      pattern,
    );
  });

  it('a manifest that does not fit the data set is refused, naming the difference', () => {
    expectBadInput(
      parry(
        'inspect',
        '--model',
        model,
        '--dataset',
        'synthetic:28x28x1:10:50',
        '--method',
        'spectral',
        '--poison-manifest',
        manifestFile,
        '--json',
      ),
      /50 examples, the manifest's 2000/,
    );
  });
});
