/**
 * The victim as a model-stealing attacker sees it: a `QueryClassifier` behind a hard query
 * budget, and its answers read back as training targets. Whatever the victim returns —
 * probabilities, truncated or rounded scores, one-hot labels — becomes a distribution per row.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../../errors.js';
import type { QueryClassifier } from '../../../models/classifier.js';

/** A victim that refuses any query past `budget` examples, and counts the ones it answered. */
export interface BudgetedVictim extends QueryClassifier {
  readonly budget: number;
  /** Examples queried so far. */
  readonly used: number;
  readonly remaining: number;
}

/** Throws BAD_OPTION unless `budget` is a positive integer (`fn` names the caller). */
export function checkBudget(budget: number, fn: string): void {
  if (!Number.isSafeInteger(budget) || budget < 1) {
    throw new ParryError(
      'BAD_OPTION',
      `${fn}: the query budget must be a positive integer, got ${budget}`,
    );
  }
}

/**
 * `victim` behind a budget of `budget` queried examples. A batch that would cross it is refused
 * whole (INTERNAL: a stealing method plans its queries and never asks for more than remain).
 */
export function withBudget(victim: QueryClassifier, budget: number): BudgetedVictim {
  checkBudget(budget, 'withBudget');
  let used = 0;
  return {
    inputShape: victim.inputShape,
    numClasses: victim.numClasses,
    bounds: victim.bounds,
    budget,
    get used() {
      return used;
    },
    get remaining() {
      return budget - used;
    },
    predict: async (x: tf.Tensor) => {
      const m = x.shape[0];
      if (used + m > budget) {
        throw new ParryError(
          'INTERNAL',
          `stealing: a query of ${m} examples would exceed the budget of ${budget} (${used} used)`,
        );
      }
      used += m;
      return victim.predict(x);
    },
  };
}

/**
 * The victim's answers for the `count` rows of `rows` (flat, `[count, ...victim.inputShape]`),
 * asked `batchSize` at a time: `[count · numClasses]` row-major, as returned.
 */
export async function askVictim(
  victim: QueryClassifier,
  rows: Float32Array,
  count: number,
  batchSize: number,
): Promise<Float32Array> {
  const k = victim.numClasses;
  const per = victim.inputShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(count * k);
  for (let start = 0; start < count; start += batchSize) {
    const m = Math.min(batchSize, count - start);
    const x = tf.tensor(rows.subarray(start * per, (start + m) * per), [m, ...victim.inputShape]);
    let answer: tf.Tensor2D | undefined;
    try {
      answer = await victim.predict(x);
      if (answer.shape.length !== 2 || answer.shape[0] !== m || answer.shape[1] !== k) {
        throw new ParryError(
          'BAD_INPUT',
          `stealing: the victim answered [${answer.shape.join(', ')}] for ${m} queries; expected [${m}, ${k}]`,
        );
      }
      out.set(await answer.data(), start * k);
    } finally {
      tf.dispose([x, answer as tf.Tensor]);
    }
  }
  return out;
}

/** Whether every row of `answers` (`[n · k]`) is a one-hot label: one 1, the rest 0. */
export function isOneHot(answers: Float32Array, k: number): boolean {
  for (let i = 0; i < answers.length; i += k) {
    let ones = 0;
    for (let j = 0; j < k; j++) {
      const v = answers[i + j];
      if (v === 1) ones++;
      else if (v !== 0) return false;
    }
    if (ones !== 1) return false;
  }
  return true;
}

/** The index of the largest value of row `i` (first on ties), as `argMax` picks it. */
export function rowArgmax(answers: Float32Array, k: number, i: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if (answers[i * k + j] > answers[i * k + best]) best = j;
  return best;
}

/**
 * Training targets from the victim's answers: 'soft' — each row as a distribution (negative or
 * NaN entries as 0, then divided by the row's sum, so truncated top-k or rounded scores still
 * sum to 1; an all-zero row becomes uniform); 'hard' — the one-hot top-1 label of each row.
 */
export function answerTargets(
  answers: Float32Array,
  k: number,
  mode: 'soft' | 'hard',
): Float32Array {
  const n = answers.length / k;
  const out = new Float32Array(answers.length);
  for (let i = 0; i < n; i++) {
    if (mode === 'hard') {
      out[i * k + rowArgmax(answers, k, i)] = 1;
      continue;
    }
    let sum = 0;
    for (let j = 0; j < k; j++) {
      const v = answers[i * k + j];
      // Not Math.max(v, 0): a NaN answer must count as 0, not poison the sum.
      if (v > 0) sum += v;
    }
    for (let j = 0; j < k; j++) {
      const v = answers[i * k + j];
      out[i * k + j] = sum > 0 ? (v > 0 ? v / sum : 0) : 1 / k;
    }
  }
  return out;
}
