/**
 * The model as the service answers with it: the input-side guards (preprocessing chain), then
 * either randomized-smoothing prediction (Cohen et al. 2019, PREDICT: a class, or abstention when
 * the top two counts are not separated at level alpha) or the model's probabilities through the
 * output-defence chain (a `QueryClassifier` wrapped by `defendQueries`). Randomised guards draw
 * from generators seeded once at start-up, so a service replays the same answers for the same
 * sequence of batches.
 *
 * The detector guard (a detector saved by `parry detect --save`, loaded once at start-up for
 * this model) scores each example as it arrived, before preprocessing, as it was fitted: an
 * example scoring above the saved threshold is flagged, and under action 'abstain' its answer is
 * withheld (`label: null`, `abstained: true`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { queryClassifierFrom } from '../attacks/evasion/black-box.js';
import { ABSTAIN, predict as smoothedPredict } from '../certify/randomized-smoothing.js';
import type { Detector } from '../defenses/detection/detector.js';
import { loadDetector } from '../defenses/detection/persist.js';
import { type DefendedQueryClassifier, defendQueries } from '../defenses/output/output-defense.js';
import { buildOutputDefenses } from '../defenses/output/registry.js';
import { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import { buildPreprocessors } from '../defenses/preprocess/spec.js';
import { Rng } from '../engine/rng.js';
import { isParryError, ParryError } from '../errors.js';
import type { Classifier } from '../models/classifier.js';
import type { DetectorGuard, Guards, SmoothingGuard } from './guard-config.js';

/** The answer for one example. */
export interface RowAnswer {
  /** The predicted class; null when the smoothed classifier or the detector guard abstains. */
  label: number | null;
  /** The (defended) probabilities; absent under smoothing, which answers labels only. */
  probabilities?: number[];
  abstained?: boolean;
  /** Whether the detector guard flagged the example (present when that guard is in force). */
  flagged?: boolean;
  /** The detector's score (the route shows it to the client only under action 'flag'). */
  detectorScore?: number;
}

/** The detector guard in force. */
export interface DetectorInForce {
  /** The registry name of the saved detector. */
  readonly name: string;
  readonly action: DetectorGuard['action'];
  /** An example scoring above it is flagged. */
  readonly threshold: number;
  /** Score histogram buckets: the saved clean calibration-score quantiles and the threshold. */
  readonly buckets: readonly number[];
}

export interface GuardedPredictor {
  readonly inputShape: readonly number[];
  readonly numClasses: number;
  readonly bounds: readonly [number, number];
  /** Names of the guards that act on every answer, in order (`preprocess:jpeg`, `smoothing`, ...). */
  readonly applied: readonly string[];
  /** The detector guard, when guards.detector is set. */
  readonly detector?: DetectorInForce;
  /** Answers for `rows` examples, `x` holding `[rows, ...inputShape]` values. */
  predictRows(x: Float32Array, rows: number): Promise<RowAnswer[]>;
  /** Frees what the guards hold (the detector's tensors); the model stays the caller's. */
  dispose(): void;
}

/** Index of the largest value (the lowest index among ties, as tf.argMax). */
export function argmax(values: ArrayLike<number>, start = 0, length = values.length): number {
  let best = 0;
  for (let c = 1; c < length; c++) if (values[start + c] > values[start + best]) best = c;
  return best;
}

/**
 * Builds the guards of `guards` around `model` (which the caller keeps owning). `seed` seeds the
 * randomised preprocessors and the smoothing noise. A saved detector fitted for another model,
 * or one that cannot be read, is a 'BAD_OPTION' / 'BAD_FILE' naming `guards.detector`.
 */
export async function createGuardedPredictor(
  model: Classifier,
  guards: Pick<Guards, 'preprocess' | 'smoothing' | 'output' | 'detector'>,
  seed: number,
): Promise<GuardedPredictor> {
  if (guards.detector === undefined) return modelPredictor(model, guards, seed);
  const { detector, info } = await loadDetectorGuard(guards.detector, model);
  try {
    const base = await modelPredictor(model, guards, seed);
    return {
      ...base,
      applied: [...base.applied, 'detector'],
      detector: info,
      predictRows: async (x, rows) => {
        const answers = await base.predictRows(x, rows);
        const scores = scoreRows(detector, model.inputShape, x, rows);
        return answers.map((a, r) => judge(a, scores[r], info));
      },
      dispose: () => detector.dispose(),
    };
  } catch (e) {
    detector.dispose();
    throw e;
  }
}

/** The saved detector of `g` for `model`; its errors name the guard. */
async function loadDetectorGuard(g: DetectorGuard, model: Classifier) {
  try {
    const { detector, saved } = await loadDetector(g.path, model);
    const quantiles = saved.calibration.scoreQuantiles?.values ?? [];
    const buckets = [...new Set([...quantiles, saved.threshold])].sort((a, b) => a - b);
    const info: DetectorInForce = {
      name: saved.detector,
      action: g.action,
      threshold: detector.threshold,
      buckets,
    };
    return { detector, info };
  } catch (e) {
    if (!isParryError(e)) throw e;
    throw new ParryError(e.code, `guard: guards.detector: ${e.message}`, { cause: e });
  }
}

/** Scores of `rows` examples (`x` holds `[rows, ...shape]` values). */
function scoreRows(detector: Detector, shape: readonly number[], x: Float32Array, rows: number) {
  const input = tf.tensor(x, [rows, ...shape]);
  try {
    return detector.score(input);
  } finally {
    input.dispose();
  }
}

/** The answer with the detector's verdict: flagged above the threshold, withheld under 'abstain'. */
function judge(a: RowAnswer, score: number, d: DetectorInForce): RowAnswer {
  const flagged = score > d.threshold;
  if (flagged && d.action === 'abstain') {
    return { label: null, abstained: true, flagged, detectorScore: score };
  }
  return { ...a, flagged, detectorScore: score };
}

/**
 * A request's detector verdict for the response and the audit line: 'pass' when no example was
 * flagged, else 'flagged' (action flag) or 'abstained' (action abstain).
 */
export function detectorVerdict(answers: readonly RowAnswer[], d: DetectorInForce): string {
  if (!answers.some((a) => a.flagged)) return 'pass';
  return d.action === 'flag' ? 'flagged' : 'abstained';
}

/** The model behind the preprocessing chain, then smoothing or the output defences. */
async function modelPredictor(
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
      dispose: () => {},
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
    dispose: () => {},
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
