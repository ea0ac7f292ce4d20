/**
 * `parry scan` through the real CLI on a small backdoored CNN (BadNets on the bundled subset):
 * Neural Cleanse's report (anomaly indices recomputed from the norms it prints), its trigger
 * images and scan.json; fine-pruning's pruned model written, reloadable, its pruned channels zero;
 * bad input as one line, exit 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadClassifier } from '../../src/models/index.js';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('cli-scan');
afterAll(() => tmp.cleanup());
const poisoned = path.join(tmp.root, 'badnets');
const model = path.join(tmp.root, 'model');
const mlp = path.join(tmp.root, 'mlp');

const train = (arch: string, out: string) =>
  parry(
    'train',
    '--dataset',
    `mnist:${poisoned}`,
    '--arch',
    arch,
    '--epochs',
    '2',
    '--seed',
    '1',
    '--workers',
    '1',
    '--out',
    out,
  );

beforeAll(() => {
  const p = parry(
    'poison',
    '--attack',
    'badnets',
    '--rate',
    '0.1',
    '--target',
    '0',
    '--out',
    poisoned,
  );
  expect(p.code, p.stderr).toBe(0);
  for (const [arch, out] of [
    ['cnn-tiny', model],
    ['mlp', mlp],
  ]) {
    const t = train(arch, out);
    expect(t.code, t.stderr).toBe(0);
  }
}, 240_000);

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

describe('parry scan', () => {
  it('neural-cleanse reports per-class norms and anomaly indices, and writes the triggers', () => {
    const out = path.join(tmp.root, 'nc');
    const r = parry(
      'scan',
      '--model',
      model,
      '--method',
      'neural-cleanse',
      '--n',
      '200',
      '--rounds',
      '3',
      '--steps-per-round',
      '2',
      '--out',
      out,
      '--seed',
      '5',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({
      command: 'scan',
      method: 'neural-cleanse',
      clean_examples: 200,
      model_changed: false,
      seed: 5,
      options: { rounds: 3, stepsPerRound: 2, unlearn: false },
    });
    const l1 = result.per_class.map((c: { l1: number }) => c.l1);
    expect(l1).toHaveLength(10);
    const m = median(l1);
    const mad = 1.4826 * median(l1.map((v: number) => Math.abs(v - m)));
    expect(result.median_l1).toBeCloseTo(m, 9);
    expect(result.mad).toBeCloseTo(mad, 9);
    result.per_class.forEach((c: { l1: number; anomalyIndex: number; flagged: boolean }) => {
      expect(c.anomalyIndex).toBeCloseTo(Math.abs(c.l1 - m) / mad, 9);
      expect(c.flagged).toBe(c.l1 < m && c.anomalyIndex > 2);
    });
    for (let k = 0; k < 10; k++) {
      expect(existsSync(path.join(out, `mask-${k}.png`))).toBe(true);
      expect(existsSync(path.join(out, `trigger-${k}.png`))).toBe(true);
    }
    expect(existsSync(path.join(out, 'model.json'))).toBe(false);
    const { engine: _engine, ...rest } = result;
    expect(JSON.parse(readFileSync(path.join(out, 'scan.json'), 'utf8'))).toEqual(rest);
  });

  it('fine-pruning writes a pruned model that loads, its pruned channels zero', async () => {
    const out = path.join(tmp.root, 'pruned');
    const r = parry(
      'scan',
      '--model',
      model,
      '--method',
      'fine-pruning',
      '--n',
      '500',
      '--epochs',
      '1',
      '--workers',
      '1',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ method: 'fine-pruning', layer: 'conv2', model_changed: true });
    expect(result.pruned).toBe(result.pruned_channels.length);
    expect(result.pruned).toBeLessThanOrEqual(Math.floor(0.9 * result.channels));
    expect(result.accuracy_pruned).toBeGreaterThanOrEqual(result.accuracy_before - 0.04);
    const pruned = await loadClassifier(out);
    const conv = pruned.layersModel!.layers.find((l) => l.name === 'conv2')!;
    const [kernel, bias] = conv.getWeights();
    const k = kernel.dataSync();
    const b = bias.dataSync();
    const channels = result.channels;
    for (const c of result.pruned_channels) {
      expect(Math.abs(b[c])).toBe(0);
      for (let i = c; i < k.length; i += channels) expect(Math.abs(k[i])).toBe(0);
    }
    pruned.dispose();
    const p = parry('predict', '--model', out, '--dataset', `mnist:${poisoned}`, '--json');
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout).accuracy).toBeGreaterThan(0.5);
  });

  it.each([
    [
      'an option the method does not read',
      ['--model', model, '--method', 'neural-cleanse', '--max-fraction', '0.5'],
      /max-fraction|maxFraction/,
    ],
    ['no method', ['--model', model], /method/],
    [
      'fine-pruning on a model without a convolution',
      ['--model', mlp, '--method', 'fine-pruning'],
      /no Conv2D layer/,
    ],
    [
      'a class outside the model',
      ['--model', model, '--method', 'neural-cleanse', '--classes', '0,1,12'],
      /class 12/,
    ],
  ])('%s: exit 2, one line', (_, args, pattern) => {
    expectBadInput(parry('scan', ...args, '--json'), pattern);
  });
});
