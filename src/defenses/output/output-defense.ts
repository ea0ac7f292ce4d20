/**
 * Output defences: the answer to a query, changed before it leaves the model (ART's
 * "postprocessors"). Each defence is a plain function on probabilities `[batch, k]` and an
 * `OutputDefense` object holding its parsed options (noise also its seeded generator);
 * `defendQueries` turns a `QueryClassifier` into one whose answers pass through a chain of them,
 * so the membership-inference and stealing attacks, and an HTTP service, query the defended
 * answers unchanged. Threat model: the attacker sees only what `predict` returns.
 */
import * as tf from '@tensorflow/tfjs-core';
import { queryClassifierFrom } from '../../attacks/evasion/black-box.js';
import { check } from '../../errors.js';
import type { Classifier, QueryClassifier } from '../../models/classifier.js';

/**
 * What a defence keeps of the undefended answer. `argmax`: 'kept' — the top class stays the
 * unique top class; 'among-ties' — it stays a maximum, but other classes may tie with it (tfjs's
 * argMax then names the lowest index); 'not-guaranteed' — it may change (noise, reverse sigmoid).
 * `sumsToOne`: every row of a probability input comes out summing to 1.
 */
export interface Preserves {
  readonly argmax: 'kept' | 'among-ties' | 'not-guaranteed';
  readonly sumsToOne: boolean;
}

export interface OutputDefense {
  /** Registry name, e.g. 'top-k'. */
  readonly name: string;
  /** The parsed options, recorded in results. */
  readonly params: Record<string, unknown>;
  /** Draws from its own seeded generator on every call. */
  readonly randomized: boolean;
  readonly preserves: Preserves;
  /** The defended answer for probabilities `[batch, k]`. Caller owns the result; `probs` is kept. */
  apply(probs: tf.Tensor2D): tf.Tensor2D;
}

/** Throws BAD_INPUT unless `probs` is `[batch, k]` with k >= 1. */
export function checkProbabilities(fn: string, probs: tf.Tensor): void {
  check(
    probs.rank === 2 && (probs.shape[1] ?? 0) >= 1,
    () => `${fn}: probabilities must have shape [batch, classes], got [${probs.shape}]`,
  );
}

/**
 * Each row divided by its sum; a row summing to 0 (nothing left to scale) becomes `fallback`'s
 * row. Call inside `tf.tidy`.
 */
export function normalizeRows(p: tf.Tensor2D, fallback: tf.Tensor2D): tf.Tensor2D {
  const sums = tf.sum(p, 1, true);
  const positive = tf.greater(sums, 0);
  const safe = tf.where(positive, sums, tf.onesLike(sums));
  return tf.where(tf.broadcastTo(positive, p.shape), tf.div(p, safe), fallback) as tf.Tensor2D;
}

/** `probs` through `defenses` in order (a copy when there are none). Caller owns the result. */
export function applyOutputDefenses(
  probs: tf.Tensor2D,
  defenses: readonly OutputDefense[],
): tf.Tensor2D {
  checkProbabilities('applyOutputDefenses', probs);
  return tf.tidy(() => defenses.reduce((p, d) => d.apply(p), tf.clone(probs)));
}

/**
 * What a chain promises. Its argmax is 'kept' when every member keeps it; 'among-ties' when no
 * member may change it and no 'kept' member follows one that may create ties ('kept' members
 * break ties by index, so after rounding a labels-only answer may name another tied class);
 * otherwise 'not-guaranteed'. Rows sum to 1 only when every member promises it (a member may hand
 * the next a row that is no distribution).
 */
export function chainPreserves(defenses: readonly OutputDefense[]): Preserves {
  const kinds = defenses.map((d) => d.preserves.argmax);
  const tiesAt = kinds.indexOf('among-ties');
  const argmax = kinds.includes('not-guaranteed')
    ? 'not-guaranteed'
    : tiesAt < 0
      ? 'kept'
      : kinds.slice(tiesAt).includes('kept')
        ? 'not-guaranteed'
        : 'among-ties';
  return { argmax, sumsToOne: defenses.every((d) => d.preserves.sumsToOne) };
}

/** A query interface whose answers pass through output defences. */
export interface DefendedQueryClassifier extends QueryClassifier {
  readonly base: QueryClassifier;
  readonly defenses: readonly OutputDefense[];
  /** Examples answered so far. */
  readonly queries: number;
}

/**
 * `model` with every answer passed through `defenses` in order. The undefended answer is freed
 * once defended; the caller owns what `predict` returns.
 */
export function defendQueries(
  model: QueryClassifier,
  defenses: readonly OutputDefense[],
): DefendedQueryClassifier {
  let queries = 0;
  const chain = [...defenses];
  return {
    base: model,
    defenses: chain,
    inputShape: model.inputShape,
    numClasses: model.numClasses,
    bounds: model.bounds,
    get queries() {
      return queries;
    },
    predict: async (x: tf.Tensor) => {
      const probs = await model.predict(x);
      try {
        queries += x.shape[0];
        return applyOutputDefenses(probs, chain);
      } finally {
        probs.dispose();
      }
    },
  };
}

/**
 * A white-box model's answers (softmax of its logits, through `queryClassifierFrom`) passed
 * through `defenses`: the defended service an attacker queries.
 */
export function defendClassifier(
  model: Classifier,
  defenses: readonly OutputDefense[],
): DefendedQueryClassifier {
  return defendQueries(queryClassifierFrom(model), defenses);
}
