/**
 * Every evasion attack's two entry points from its parser and its run: `create(config)` validates
 * once and returns the attack (which does not re-check it), `call(model, x, labels, config, opts)`
 * does both in one go.
 */
import type * as tf from '@tensorflow/tfjs-core';

export type EvasionRunner<M, O, R> = (model: M, x: tf.Tensor, labels: tf.Tensor1D, opts?: O) => R;
export type EvasionCall<I, M, O, R> = (
  model: M,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  config: I,
  opts?: O,
) => R;

/**
 * `call` validates before it runs: an asynchronous attack (the default) reports a bad config as a
 * rejected promise, as its run would report any other error; a synchronous one throws.
 */
export function evasionAttack<I, C, M, O, R>(
  parse: (config: I) => C,
  run: (model: M, x: tf.Tensor, labels: tf.Tensor1D, c: C, opts: O) => R,
  asynchronous = true,
) {
  const create = (config: unknown): EvasionRunner<M, O, R> => {
    const c = parse(config as I);
    return (model, x, labels, opts) => run(model, x, labels, c, opts ?? ({} as O));
  };
  const call: EvasionCall<I, M, O, R> = (model, x, labels, config, opts) => {
    let attack: EvasionRunner<M, O, R>;
    try {
      attack = create(config);
    } catch (e) {
      if (asynchronous) return Promise.reject(e) as R;
      throw e;
    }
    return attack(model, x, labels, opts);
  };
  return { create, call };
}
