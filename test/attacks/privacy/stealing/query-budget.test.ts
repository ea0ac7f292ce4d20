/**
 * The victim behind a budget, and its answers read as targets: batches past the budget are
 * refused whole; probabilities, truncated or rounded scores, NaN and one-hot labels become
 * distributions as computed by hand.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  answerTargets,
  askVictim,
  checkBudget,
  isOneHot,
  withBudget,
} from '../../../../src/attacks/privacy/stealing/index.js';
import { ParryError } from '../../../../src/errors.js';
import type { QueryClassifier } from '../../../../src/models/classifier.js';

/** A victim answering uniform probabilities over `k` classes (or a wrong shape, when told). */
function uniformVictim(k = 4, shape?: [number, number]): QueryClassifier & { asked: number } {
  const v = {
    inputShape: [2, 2, 1],
    numClasses: k,
    bounds: [0, 1] as [number, number],
    asked: 0,
    predict: async (x: tf.Tensor) => {
      v.asked += x.shape[0];
      return tf.fill(shape ?? [x.shape[0], k], 1 / k) as tf.Tensor2D;
    },
  };
  return v;
}

describe('query budget', () => {
  it('counts queried examples and refuses a batch that would cross the budget', async () => {
    const inner = uniformVictim();
    const v = withBudget(inner, 10);
    const rows = new Float32Array(7 * 4);
    await askVictim(v, rows, 7, 3); // batches of 3, 3, 1
    expect([v.used, v.remaining, inner.asked]).toEqual([7, 3, 7]);
    const err = await askVictim(v, rows, 4, 4).catch((e) => e);
    expect(err).toBeInstanceOf(ParryError);
    expect(err.message).toBe(
      'stealing: a query of 4 examples would exceed the budget of 10 (7 used)',
    );
    // Refused whole: the victim never saw it.
    expect([v.used, inner.asked]).toEqual([7, 7]);
    await askVictim(v, rows, 3, 8);
    expect(v.remaining).toBe(0);
  });

  it('refuses a budget that is not a positive integer, naming it', () => {
    for (const b of [0, -1, 1.5, Number.NaN]) {
      expect(() => checkBudget(b, 'steal')).toThrow(
        `steal: the query budget must be a positive integer, got ${b}`,
      );
      expect(() => withBudget(uniformVictim(), b)).toThrow(/withBudget: the query budget/);
    }
  });

  it('reads answers back in row order and refuses an answer of the wrong shape', async () => {
    const before = tf.memory().numTensors;
    const out = await askVictim(uniformVictim(4), new Float32Array(5 * 4), 5, 2);
    expect(Array.from(out)).toEqual(new Array(20).fill(0.25));
    expect(tf.memory().numTensors).toBe(before);
    await expect(
      askVictim(uniformVictim(4, [2, 3]), new Float32Array(2 * 4), 2, 2),
    ).rejects.toThrow('stealing: the victim answered [2, 3] for 2 queries; expected [2, 4]');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('turns answers into targets: distributions (renormalised) or one-hot top-1 labels', () => {
    // Rows: probabilities (unchanged); top-2 kept (0.75 / 0.25); a negative and a NaN (as 0);
    // nothing (uniform).
    const answers = Float32Array.from([0.2, 0.5, 0.3, 0, 0.6, 0.2, -0.1, Number.NaN, 0.5, 0, 0, 0]);
    const soft = answerTargets(answers, 3, 'soft');
    const want = [0.2, 0.5, 0.3, 0, 0.75, 0.25, 0, 0, 1, 1 / 3, 1 / 3, 1 / 3];
    for (let i = 0; i < 12; i++) expect(soft[i]).toBeCloseTo(want[i], 6);
    expect(Array.from(answerTargets(answers, 3, 'hard'))).toEqual([
      0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0,
    ]);
  });

  it('tells one-hot answers from scores', () => {
    expect(isOneHot(Float32Array.from([0, 1, 0, 1, 0, 0]), 3)).toBe(true);
    expect(isOneHot(Float32Array.from([0, 1, 0, 0.9, 0.1, 0]), 3)).toBe(false);
    expect(isOneHot(Float32Array.from([0, 1, 1]), 3)).toBe(false);
    expect(isOneHot(Float32Array.from([0, 0, 0]), 3)).toBe(false);
  });
});
