/**
 * `parry dpa` through the real CLI on a small synthetic set: the curve and median follow from the
 * per-example certificates it writes, the k models load, and bad options are one line, exit 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dpaCertificate } from '../../src/certify/index.js';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('cli-dpa');
afterAll(() => tmp.cleanup());

describe('parry dpa', () => {
  it('trains k models, certifies the test split and writes the certificates', () => {
    const out = path.join(tmp.root, 'dpa');
    const r = parry(
      'dpa',
      '--dataset',
      'synthetic:6x6x1:3:300',
      '--k',
      '5',
      '--arch',
      'mlp',
      '--epochs',
      '2',
      '--workers',
      '1',
      '--seed',
      '4',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ command: 'dpa', options: { k: 5, arch: 'mlp', seed: 4 } });
    expect(result.partition_sizes.reduce((a: number, b: number) => a + b)).toBe(
      result.train_examples,
    );
    const written = JSON.parse(readFileSync(path.join(out, 'dpa.json'), 'utf8'));
    const per: { label: number; prediction: number; votes: number[]; certified: number }[] =
      written.per_example;
    expect(per).toHaveLength(result.test_examples);
    for (const e of per) {
      const d = dpaCertificate(e.votes);
      expect(e.prediction).toBe(d.prediction);
      expect(e.certified).toBe(d.prediction === e.label ? d.certified : -1);
    }
    for (const { size, accuracy } of result.curve) {
      expect(accuracy).toBeCloseTo(per.filter((e) => e.certified >= size).length / per.length, 12);
    }
    expect(result.accuracy).toBeCloseTo(result.curve[0].accuracy, 12);
    for (let i = 0; i < 5; i++)
      expect(existsSync(path.join(out, `partition-${i}`, 'model.json'))).toBe(true);
    const p = parry(
      'predict',
      '--model',
      path.join(out, 'partition-0'),
      '--dataset',
      'synthetic:6x6x1:3:300',
      '--json',
    );
    expect(p.code, p.stderr).toBe(0);
  });

  it.each([
    ['k of 0', ['--k', '0'], /k/],
    ['an unknown architecture', ['--arch', 'vgg'], /arch/],
  ])('%s: exit 2, one line', (_, args, pattern) => {
    expectBadInput(parry('dpa', '--dataset', 'synthetic:6x6x1:3:60', ...args, '--json'), pattern);
  });
});
