/**
 * BadNets and Blended: triggers applied exactly (pixel by pixel, against an independent
 * rendering), only the reported examples touched, labels as the mapping says, the manifest a
 * JSON round trip that re-applies the same trigger, the triggered test set, bad options, seeds,
 * and the poisoned set's round trip through idx files.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { badnets, blended } from '../../../src/attacks/poisoning/backdoor.js';
import {
  applyTrigger,
  type PoisonResult,
  parseManifest,
  triggeredTestSet,
} from '../../../src/attacks/poisoning/poison-manifest.js';
import { writeMnistFormat } from '../../../src/data/idx-dataset.js';
import { loadMnistDir } from '../../../src/data/mnist.js';
import { Rng } from '../../../src/engine/rng.js';
import {
  changedImages,
  changedLabels,
  example,
  expectBadOption,
  expectError,
  expectUnitRange,
  gridData,
} from './helpers.js';

const data = gridData(60, 3, 1);
const dir = mkdtempSync(join(tmpdir(), 'parry-poison-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const H = 8;
const W = 8;

/** The patch as the paper draws it, rendered independently: value at (row, col) or undefined. */
function patchValue(
  row: number,
  col: number,
  p: { x: number; y: number; size: number; pattern: 'white' | 'checkerboard' },
): number | undefined {
  const r = row - p.y;
  const q = col - p.x;
  if (r < 0 || q < 0 || r >= p.size || q >= p.size) return undefined;
  return p.pattern === 'white' ? 1 : (r + q) % 2 === 0 ? 1 : 0;
}

/** Every poisoned image is the original with the patch, pixel by pixel; others untouched. */
function expectPatched(
  r: PoisonResult,
  p: { x: number; y: number; size: number; pattern: 'white' | 'checkerboard' },
) {
  const poisoned = new Set(r.poisonedIndices);
  for (let i = 0; i < data.shape[0]; i++) {
    const before = example(data, i);
    const after = example(r.dataset, i);
    for (let row = 0; row < H; row++) {
      for (let col = 0; col < W; col++) {
        const v = poisoned.has(i) ? patchValue(row, col, p) : undefined;
        expect(after[row * W + col]).toBe(v ?? before[row * W + col]);
      }
    }
  }
  expectUnitRange(r.dataset.x);
}

describe('badnets', () => {
  it('all-to-one: a white 3x3 patch bottom-right on round(rate·n) non-target examples, relabelled', () => {
    const r = badnets(data, { rate: 0.1, target: 2, seed: 4 });
    expect(r.poisonedIndices).toHaveLength(6);
    expect(r.poisonedIndices).toEqual([...r.poisonedIndices].sort((a, b) => a - b));
    expect(new Set(r.poisonedIndices).size).toBe(6);
    for (const i of r.poisonedIndices) {
      expect(data.labels[i]).not.toBe(2);
      expect(r.dataset.labels[i]).toBe(2);
    }
    expect(changedLabels(data.labels, r.dataset.labels)).toEqual(r.poisonedIndices);
    expect(changedImages(data, r.dataset)).toEqual(r.poisonedIndices);
    expectPatched(r, { x: 5, y: 5, size: 3, pattern: 'white' });
    expect(r.manifest.trigger).toEqual({ kind: 'patch', size: 3, x: 5, y: 5, pattern: 'white' });
    expect(r.manifest).toMatchObject({
      targetClass: 2,
      mapping: 'all-to-one',
      labelsChanged: true,
    });
    // The input set is not modified.
    expect(data.labels).toEqual(gridData(60, 3, 1).labels);
  });

  it('checkerboard at a corner or at x/y; all-to-all relabels y → y+1 mod K', () => {
    const r = badnets(data, { rate: 0.25, pattern: 'checkerboard', position: 'top-left' });
    expectPatched(r, { x: 0, y: 0, size: 3, pattern: 'checkerboard' });
    const xy = badnets(data, { rate: 0.1, patchSize: 2, x: 4, y: 1, pattern: 'checkerboard' });
    expectPatched(xy, { x: 4, y: 1, size: 2, pattern: 'checkerboard' });
    const all = badnets(data, { rate: 0.5, mapping: 'all-to-all', seed: 2 });
    expect(all.poisonedIndices).toHaveLength(30);
    for (const i of all.poisonedIndices)
      expect(all.dataset.labels[i]).toBe((data.labels[i] + 1) % 3);
    // Drawn from every class, target included.
    expect(new Set(all.poisonedIndices.map((i) => data.labels[i])).size).toBe(3);
    expect(all.manifest).toMatchObject({ targetClass: null, mapping: 'all-to-all' });
  });

  it('a given patch image is stamped as given', () => {
    const image = Float32Array.from([0.2, 0.4, 0.6, 0.8]);
    const r = badnets(
      data,
      { rate: 0.05, patchSize: 2, position: 'center', pattern: 'image' },
      { pattern: image },
    );
    for (const i of r.poisonedIndices) {
      const after = example(r.dataset, i);
      expect([after[3 * W + 3], after[3 * W + 4], after[4 * W + 3], after[4 * W + 4]]).toEqual(
        Array.from(image),
      );
    }
    expect(r.manifest.trigger).toMatchObject({ pattern: 'image', values: Array.from(image) });
  });

  it('the manifest is plain JSON and re-applies exactly the poisons’ trigger', () => {
    const r = badnets(data, { rate: 0.1, target: 1, pattern: 'checkerboard', seed: 7 });
    const json = JSON.parse(JSON.stringify(r.manifest));
    expect(json).toEqual(r.manifest);
    const m = parseManifest(json);
    expect(m.options).toMatchObject({
      rate: 0.1,
      target: 1,
      pattern: 'checkerboard',
      seed: 7,
      patchSize: 3,
    });
    const size = 64;
    const originals = new Float32Array(r.poisonedIndices.length * size);
    r.poisonedIndices.forEach((j, i) => {
      originals.set(example(data, j), i * size);
    });
    const again = applyTrigger(originals, m);
    r.poisonedIndices.forEach((j, i) => {
      expect(Array.from(again.subarray(i * size, (i + 1) * size))).toEqual(
        Array.from(example(r.dataset, j)),
      );
    });
    expect(Array.from(originals.subarray(0, size))).toEqual(
      Array.from(example(data, r.poisonedIndices[0])),
    );
  });

  it('triggeredTestSet: the non-target test examples, triggered, labelled with the target', () => {
    const test = gridData(30, 3, 1, 'test');
    const r = badnets(data, { rate: 0.1, target: 1 });
    const t = triggeredTestSet(test, r.manifest);
    const kept = Array.from(test.labels.keys()).filter((i) => test.labels[i] !== 1);
    expect(t.shape).toEqual([kept.length, 8, 8, 1]);
    expect(Array.from(t.labels)).toEqual(kept.map(() => 1));
    const triggered = applyTrigger(test, r.manifest);
    expect(Array.from(triggered.labels)).toEqual(Array.from(test.labels));
    kept.forEach((j, i) => {
      expect(Array.from(example(t, i))).toEqual(Array.from(example(triggered, j)));
    });
    const all = badnets(data, { rate: 0.1, mapping: 'all-to-all' });
    const tAll = triggeredTestSet(test, all.manifest);
    expect(Array.from(tAll.labels)).toEqual(Array.from(test.labels, (y) => (y + 1) % 3));
  });

  it('refuses bad options with one BAD_OPTION naming the option', async () => {
    await expectBadOption(() => badnets(data, { rate: 1.5 }), 'rate');
    await expectBadOption(() => badnets(data, { rate: -0.1 }), 'rate');
    await expectBadOption(() => badnets(data, { patchSize: 9 }), 'patchSize');
    await expectBadOption(() => badnets(data, { target: 3 }), 'target');
    await expectBadOption(() => badnets(data, { x: 6, y: 0 }), 'x');
    await expectBadOption(() => badnets(data, { x: 1 }), 'y');
    await expectBadOption(() => badnets(data, { x: 1, y: 1, position: 'center' }), 'position');
    await expectBadOption(() => badnets(data, { mapping: 'all-to-all', target: 1 }), 'target');
    await expectBadOption(() => badnets(data, { pattern: 'image' }), 'pattern');
    // All 60 examples, but only 40 are outside the target class.
    await expectBadOption(() => badnets(data, { rate: 1 }), 'rate');
    await expectBadOption(() => badnets(data, { stpes: 3 } as never), 'stpes');
  });

  it('a manifest applied to other data is a BAD_INPUT naming the mismatch', async () => {
    const r = badnets(data, { rate: 0.1 });
    const other = { ...gridData(10, 4, 1), name: 'other' };
    await expectError(
      () => triggeredTestSet(other, r.manifest),
      'BAD_INPUT',
      'does not match',
      '4 classes',
    );
    await expectError(
      () => applyTrigger(new Float32Array(65), r.manifest),
      'BAD_INPUT',
      'not whole',
    );
    await expectError(
      () => parseManifest({ ...r.manifest, poisonedIndices: [-1] }),
      'BAD_OPTION',
      'poisonedIndices',
    );
  });

  it('is seeded: the same seed gives the same poisoned set, another seed another', () => {
    const a = badnets(data, { rate: 0.2, seed: 11 });
    const b = badnets(data, { rate: 0.2, seed: 11 });
    const c = badnets(data, { rate: 0.2, seed: 12 });
    expect(b.poisonedIndices).toEqual(a.poisonedIndices);
    expect(b.dataset.x).toEqual(a.dataset.x);
    expect(b.dataset.labels).toEqual(a.dataset.labels);
    expect(c.poisonedIndices).not.toEqual(a.poisonedIndices);
  });

  it('the poisoned set round-trips through idx files', () => {
    const r = badnets(data, { rate: 0.1, pattern: 'checkerboard' });
    writeMnistFormat(r.dataset, dir, 'train');
    const back = loadMnistDir(dir, 'train', 'back', { numClasses: 3 });
    expect(back.shape).toEqual(r.dataset.shape);
    expect(back.labels).toEqual(r.dataset.labels);
    expect(back.x).toEqual(r.dataset.x);
  });
});

describe('blended', () => {
  it('x′ = (1 − α)·x + α·noise on round(rate·n) non-target examples, noise from Rng(patternSeed)', () => {
    const r = blended(data, { rate: 0.1, alpha: 0.2, target: 0, seed: 3, patternSeed: 21 });
    const rng = new Rng(21);
    // The noise image is stored in float32, as every image is.
    const noise = Array.from({ length: 64 }, () => Math.fround(rng.next()));
    const poisoned = new Set(r.poisonedIndices);
    expect(r.poisonedIndices).toHaveLength(6);
    for (let i = 0; i < 60; i++) {
      const before = example(data, i);
      const after = example(r.dataset, i);
      const want = poisoned.has(i)
        ? Array.from(before, (v, j) => Math.fround(0.8 * v + 0.2 * noise[j]))
        : Array.from(before);
      expect(Array.from(after)).toEqual(want);
      expect(r.dataset.labels[i]).toBe(poisoned.has(i) ? 0 : data.labels[i]);
      if (poisoned.has(i)) expect(data.labels[i]).not.toBe(0);
    }
    expectUnitRange(r.dataset.x);
    expect(r.manifest.trigger).toEqual({
      kind: 'blend',
      alpha: 0.2,
      pattern: 'noise',
      patternSeed: 21,
    });
  });

  it('the noise seed defaults to the seed; a given image is blended; the manifest re-applies it', () => {
    const r = blended(data, { rate: 0.1, seed: 5 });
    expect(r.manifest.trigger).toMatchObject({ alpha: 0.1, patternSeed: 5 });
    const image = Float32Array.from({ length: 64 }, (_, j) => (j % 8) / 7);
    const g = blended(data, { rate: 0.1, blendPattern: 'image' }, { pattern: image });
    const m = parseManifest(JSON.parse(JSON.stringify(g.manifest)));
    const size = 64;
    for (const i of g.poisonedIndices) {
      const want = Array.from(example(data, i), (v, j) => Math.fround(0.9 * v + 0.1 * image[j]));
      expect(Array.from(example(g.dataset, i))).toEqual(want);
      expect(Array.from(applyTrigger(example(data, i).slice(), m))).toEqual(want);
    }
    expect(g.dataset.x.length).toBe(60 * size);
  });

  it('refuses bad options and creates no tensors', async () => {
    const before = tf.memory().numTensors;
    await expectBadOption(() => blended(data, { alpha: 0 }), 'alpha');
    await expectBadOption(() => blended(data, { alpha: 1.5 }), 'alpha');
    await expectBadOption(() => blended(data, { blendPattern: 'image' }), 'blendPattern');
    await expectBadOption(
      () => blended(data, { blendPattern: 'image', patternSeed: 1 }),
      'patternSeed',
    );
    await expectBadOption(() => blended(data, { target: -1 }), 'target');
    blended(data, { rate: 0.5 });
    badnets(data, { rate: 0.5 });
    expect(tf.memory().numTensors).toBe(before);
  });
});
