/**
 * The model as the service answers with it: the input-side guards (preprocessing chain), then
 * either randomized-smoothing prediction (Cohen et al. 2019, PREDICT: a class, or abstention when
 * the top two counts are not separated at level alpha) or the model's probabilities through the
 * output-defence chain (a `QueryClassifier` wrapped by `defendQueries`). Randomised guards draw
 * from generators seeded once at start-up, so a service replays the same answers for the same
 * sequence of batches.
 */
import * as tf from '@tensorflow/tfjs-core';
import { queryClassifierFrom } from '../attacks/evasion/black-box.js';
import { ABSTAIN, predict as smoothedPredict } from '../certify/randomized-smoothing.js';
import { type DefendedQueryClassifier, defendQueries } from '../defenses/output/output-defense.js';
import { buildOutputDefenses } from '../defenses/output/registry.js';
import { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import { buildPreprocessors } from '../defenses/preprocess/spec.js';
import { Rng } from '../engine/rng.js';
import type { Classifier } from '../models/classifier.js';
import type { Guards, SmoothingGuard } from './guard-config.js';

/** The answer for one example. */
export interface RowAnswer {
  /** The predicted class; null when the smoothed classifier abstains. */
  label: number | null;
  /** The (defended) probabilities; absent under smoothing, which answers labels only. */
  probabilities?: number[];
  abstained?: boolean;
}

export interface GuardedPredictor {
  readonly inputShape: readonly number[];
  readonly numClasses: number;
  readonly bounds: readonly [number, number];
  /** Names of the guards that act on every answer, in order (`preprocess:jpeg`, `smoothing`, ...). */
  readonly applied: readonly string[];
  /** Answers for `rows` examples, `x` holding `[rows, ...inputShape]` values. */
  predictRows(x: Float32Array, rows: number): Promise<RowAnswer[]>;
}

/** Index of the largest value (the lowest index among ties, as tf.argMax). */
export function argmax(values: ArrayLike<number>, start = 0, length = values.length): number {
  let best = 0;
  for (let c = 1; c < length; c++) if (values[start + c] > values[start + best]) best = c;
  return best;
}

/**
 * Builds the guards of `guards` around `model` (which the caller keeps owning). `seed` seeds the
 * randomised preprocessors and the smoothing noise.
 */
export async function createGuardedPredictor(
  model: Classifier,
  guards: Pick<Guards, 'preprocess' | 'smoothing' | 'output'>,
  seed: number,
): Promise<GuardedPredictor> {
  const preprocessors = guards.preprocess ? await buildPreprocessors(guards.preprocess) : [];
  const classifier: Classifier =
    preprocessors.length > 0 ? new DefendedClassifier(model, preprocessors, { seed }) : model;
  const applied = preprocessors.map((p) => `preprocess:${p.name}`);
  const shape = model.inputShape;
  if (guards.smoothing !== undefined) {
    const smoothing = guards.smoothing;
    const rng = new Rng(seed);
    return {
      inputShape: shape,
      numClasses: model.numClasses,
      bounds: model.bounds,
      applied: [...applied, 'smoothing'],
      predictRows: (x, rows) => smoothedRows(classifier, smoothing, rng, x, rows),
    };
  }
  const chain = guards.output ? buildOutputDefenses(guards.output) : [];
  const answers = defendQueries(queryClassifierFrom(classifier), chain);
  return {
    inputShape: shape,
    numClasses: model.numClasses,
    bounds: model.bounds,
    applied: [...applied, ...chain.map((d) => `output:${d.name}`)],
    predictRows: (x, rows) => probabilityRows(answers, x, rows),
  };
}

async function probabilityRows(
  model: DefendedQueryClassifier,
  x: Float32Array,
  rows: number,
): Promise<RowAnswer[]> {
  const input = tf.tensor(x, [rows, ...model.inputShape]);
  let probs: tf.Tensor2D;
  try {
    probs = await model.predict(input);
  } finally {
    input.dispose();
  }
  const values = await probs.data();
  probs.dispose();
  const k = model.numClasses;
  const out: RowAnswer[] = [];
  for (let r = 0; r < rows; r++) {
    const p = Array.from(values.subarray(r * k, (r + 1) * k));
    out.push({ label: argmax(p), probabilities: p });
  }
  return out;
}

async function smoothedRows(
  model: Classifier,
  c: SmoothingGuard,
  rng: Rng,
  x: Float32Array,
  rows: number,
): Promise<RowAnswer[]> {
  const size = x.length / rows;
  const out: RowAnswer[] = [];
  for (let r = 0; r < rows; r++) {
    const example = tf.tensor(x.subarray(r * size, (r + 1) * size), model.inputShape);
    try {
      const label = await smoothedPredict(model, example, c, rng);
      out.push(label === ABSTAIN ? { label: null, abstained: true } : { label });
    } finally {
      example.dispose();
    }
  }
  return out;
}
