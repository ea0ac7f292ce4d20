/**
 * One table-driven test over the poisoning registry: every attack runs from its entry with a
 * small budget, stays in [0, 1], reports exactly the examples it changed, writes a manifest that
 * survives JSON, keeps labels when it is clean-label, is seeded, leaks no tensors, and refuses an
 * unknown option, a rate outside [0, 1] and an option it does not read, naming them.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../../src/attacks/poisoning/poison-manifest.js';
import {
  findPoisonAttack,
  POISON_ATTACKS,
  type PoisonEntry,
  poisonAttackNames,
  runPoison,
} from '../../../src/attacks/poisoning/registry.js';
import { cnnModel } from '../helpers.js';
import {
  changedImages,
  changedLabels,
  expectBadOption,
  expectError,
  expectUnitRange,
  gridData,
} from './helpers.js';

const data = gridData(60, 3, 1);
const test = gridData(12, 3, 1, 'test');
const model = cnnModel();
const targetImage = Array.from(test.labels.keys()).find((i) => test.labels[i] !== 1)!;

/** Options that keep each attack small; only those it reads. */
function small(e: PoisonEntry, seed: number): Record<string, unknown> {
  const all: Record<string, unknown> = {
    rate: 0.1,
    seed,
    source: 0,
    target: 1,
    steps: 2,
    restarts: 1,
    maxIterations: 5,
    targetImage,
    targetImages: [targetImage],
  };
  return Object.fromEntries(Object.entries(all).filter(([k]) => k in e.schema.shape));
}

const ctx = { model, test };

describe('poisoning registry', () => {
  it('lists every attack once, with its needs', () => {
    expect(poisonAttackNames()).toEqual([
      'label-flip',
      'label-flip-pair',
      'label-flip-adversarial',
      'badnets',
      'blended',
      'clean-label',
      'feature-collision',
      'gradient-matching',
    ]);
    expect(findPoisonAttack('feature-collision')?.needs).toEqual(['model', 'test-set']);
    expect(findPoisonAttack('badnets')?.needs).toEqual([]);
  });

  for (const e of POISON_ATTACKS) {
    it(`${e.name}: runs from its entry, reports exactly what it changed, is seeded, leaks nothing`, async () => {
      tf.tidy(() => {
        model.logits(tf.zeros([1, 8, 8, 1]));
      });
      const before = tf.memory().numTensors;
      const r = await runPoison(e.name, data, small(e, 3), ctx);
      const again = await runPoison(e.name, data, small(e, 3), ctx);
      const other = await runPoison(e.name, data, small(e, 4), ctx);
      expect(tf.memory().numTensors).toBe(before);
      expect(r.poisonedIndices.length).toBeGreaterThan(0);
      expect(r.manifest.poisonedIndices).toEqual(r.poisonedIndices);
      const changed = [
        ...new Set([
          ...changedImages(data, r.dataset),
          ...changedLabels(data.labels, r.dataset.labels),
        ]),
      ];
      expect(changed.sort((a, b) => a - b)).toEqual(r.poisonedIndices);
      if (e.cleanLabel) expect(r.dataset.labels).toEqual(data.labels);
      expectUnitRange(r.dataset.x);
      expect(parseManifest(JSON.parse(JSON.stringify(r.manifest)))).toEqual(r.manifest);
      expect(r.manifest.attack).toBe(e.name);
      expect(r.manifest.seed).toBe(3);
      expect(again.dataset.x).toEqual(r.dataset.x);
      expect(again.dataset.labels).toEqual(r.dataset.labels);
      // Adversarial flips draw nothing: the seed changes nothing there.
      if (e.name !== 'label-flip-adversarial')
        expect(other.poisonedIndices).not.toEqual(r.poisonedIndices);
    });

    it(`${e.name}: refuses an unknown option, a bad rate and an option it does not read`, async () => {
      const o = small(e, 0);
      const unknown = await expectBadOption(
        () => runPoison(e.name, data, { ...o, stpes: 3 }, ctx),
        'stpes',
      );
      expect(unknown.message).toMatch(new RegExp(`^${e.name}: stpes: unknown option`));
      await expectBadOption(() => runPoison(e.name, data, { ...o, rate: 1.01 }, ctx), 'rate');
      await expectBadOption(() => runPoison(e.name, data, { ...o, rate: -0.5 }, ctx), 'rate');
      const unread = POISON_ATTACKS.flatMap((a) => Object.keys(a.schema.shape)).find(
        (k) => !(k in e.schema.shape),
      )!;
      const err = await expectBadOption(
        () => runPoison(e.name, data, { ...o, [unread]: 1 }, ctx),
        unread,
      );
      expect(err.message).toContain(`${e.name} does not read '${unread}'`);
    });
  }

  for (const name of [
    'label-flip-adversarial',
    'clean-label',
    'feature-collision',
    'gradient-matching',
  ]) {
    it(`${name}: reports progress up to 1, and an abort rejects without leaking`, async () => {
      const e = findPoisonAttack(name)!;
      const seen: number[] = [];
      await runPoison(name, data, small(e, 0), { ...ctx, progress: (f) => seen.push(f) });
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= seen[i - 1]))).toBe(true);
      expect(seen[seen.length - 1]).toBe(1);
      const before = tf.memory().numTensors;
      const controller = new AbortController();
      const reason = new Error('stop');
      const run = runPoison(name, data, small(e, 0), {
        ...ctx,
        signal: controller.signal,
        progress: () => controller.abort(reason),
      });
      await expect(run).rejects.toBe(reason);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('an unknown attack names the known ones', async () => {
    await expectError(
      () => runPoison('badnet', data, {}),
      'BAD_OPTION',
      "unknown poisoning attack 'badnet'",
      'badnets',
    );
  });
});
