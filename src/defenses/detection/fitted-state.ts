/**
 * A fitted detector's state as plain data: what `saveDetector` writes and `loadDetector` hands
 * back (persist.ts). Each detector that can be saved implements `SavableDetector`: its settings
 * (the constructor's config), its fitted numbers, its fitted arrays (row-major, with their shape
 * and dtype, so float64 statistics come back bit for bit) and any small LayersModel it trained.
 * The model it was fitted for is not part of the state: `restoreState` is given it again.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import type { Detector } from './detector.js';
import type { LogisticModel } from './logistic.js';

export type StateValues = Float32Array | Float64Array | Int32Array;

export interface StateArray {
  shape: number[];
  data: StateValues;
}

export interface DetectorState {
  /** The detector's settings, as its constructor takes them (JSON values only). */
  config: Record<string, unknown>;
  /** Fitted numbers (finite). */
  values: Record<string, number>;
  /** Fitted arrays. */
  arrays: Record<string, StateArray>;
  /** Fitted tfjs LayersModels (MagNet's autoencoder); `restoreState` takes ownership. */
  models: Record<string, tfl.LayersModel>;
}

/** A detector that can hand out its fitted state and take it back. */
export interface SavableDetector extends Detector {
  /** The fitted state; arrays are copies, models are the detector's own (do not dispose). */
  exportState(): DetectorState;
  /**
   * Takes `state` (as `exportState` gave it, read back) as its fitted state for `model`. Keeps
   * copies of the arrays and owns the models. Throws 'BAD_FILE' naming what is missing or of the
   * wrong shape.
   */
  restoreState(model: Classifier, state: DetectorState): void;
}

export function isSavable(d: Detector): d is SavableDetector {
  const s = d as Partial<SavableDetector>;
  return typeof s.exportState === 'function' && typeof s.restoreState === 'function';
}

const bad = (name: string, message: string) => new ParryError('BAD_FILE', `${name}: ${message}`);

/** A tensor's values and shape (read synchronously: a save-time boundary). */
export function arrayOf(t: tf.Tensor): StateArray {
  return { shape: [...t.shape], data: Float32Array.from(t.dataSync()) };
}

/**
 * The array `key` of `state` as a float32 tensor (caller owns it). `shape` entries that are
 * numbers must match; `null` entries are free. 'BAD_FILE' when missing or of another shape.
 */
export function stateTensor(
  name: string,
  state: DetectorState,
  key: string,
  shape: readonly (number | null)[],
): tf.Tensor {
  const a = stateArray(name, state, key);
  const fits =
    a.shape.length === shape.length && shape.every((d, i) => d === null || d === a.shape[i]);
  if (!fits) {
    const want = `[${shape.map((d) => d ?? '?').join(', ')}]`;
    throw bad(name, `array '${key}' has shape [${a.shape.join(', ')}], expected ${want}`);
  }
  return tf.tensor(Float32Array.from(a.data), a.shape, 'float32');
}

/** The array `key` of `state`; 'BAD_FILE' when missing. */
export function stateArray(name: string, state: DetectorState, key: string): StateArray {
  const a = state.arrays[key];
  if (a === undefined) throw bad(name, `the saved state has no array '${key}'`);
  return a;
}

/** The number `key` of `state`; 'BAD_FILE' when missing. */
export function stateValue(name: string, state: DetectorState, key: string): number {
  const v = state.values[key];
  if (v === undefined) throw bad(name, `the saved state has no value '${key}'`);
  return v;
}

/** A logistic model's arrays and bias under `prefix` (float64, exact). */
export function logisticState(
  lr: LogisticModel,
  prefix: string,
): Pick<DetectorState, 'values' | 'arrays'> {
  const d = lr.w.length;
  const vec = (v: Float64Array) => ({ shape: [d], data: Float64Array.from(v) });
  return {
    values: { [`${prefix}.b`]: lr.b },
    arrays: {
      [`${prefix}.mean`]: vec(lr.mean),
      [`${prefix}.std`]: vec(lr.std),
      [`${prefix}.w`]: vec(lr.w),
    },
  };
}

/** The logistic model `logisticState` wrote under `prefix`, with `d` features. */
export function logisticFromState(
  name: string,
  state: DetectorState,
  prefix: string,
  d: number,
): LogisticModel {
  const vec = (key: string) => {
    const a = stateArray(name, state, `${prefix}.${key}`);
    if (a.shape.length !== 1 || a.shape[0] !== d) {
      throw bad(
        name,
        `array '${prefix}.${key}' has shape [${a.shape.join(', ')}], expected [${d}]`,
      );
    }
    return Float64Array.from(a.data);
  };
  return {
    mean: vec('mean'),
    std: vec('std'),
    w: vec('w'),
    b: stateValue(name, state, `${prefix}.b`),
  };
}
