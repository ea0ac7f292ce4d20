/**
 * Preprocessing defenses: a transformation of the input applied before the classifier
 * (DESIGN.md, "Core interfaces"). Every preprocessor maps `[batch, h, w, c]` in `bounds` to the
 * same shape in `bounds`. Non-differentiable ones (quantisation, JPEG, median, TV) carry a BPDA
 * surrogate (Athalye, Carlini & Wagner 2018): a differentiable function close to them, used on
 * the backward pass only (see `straightThrough`).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { z } from 'zod';
import type { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import { parseWith } from '../../options.js';

export interface Preprocessor {
  /** Spec name, e.g. 'jpeg'. */
  readonly name: string;
  /** The parsed parameters, recorded in results. */
  readonly params: Record<string, unknown>;
  /** Its gradient is meaningful (tfjs differentiates it); false: zero or disconnected. */
  readonly differentiable: boolean;
  /** Draws randomness from `rng` on every call. */
  readonly randomized: boolean;
  /**
   * x `[batch, h, w, c]` in `bounds` → same shape in `bounds`. Randomised steps need `rng` (and
   * throw without it). Caller owns the result; x is not disposed.
   */
  apply(x: tf.Tensor4D, bounds: readonly [number, number], rng?: Rng): tf.Tensor4D;
  /** BPDA surrogate: differentiable, close to `apply` (identity unless stated). */
  surrogate(x: tf.Tensor4D, bounds: readonly [number, number]): tf.Tensor4D;
}

/** How a step behaves: a rounding filter is neither differentiable nor random; a crop is both. */
export const FILTER = { differentiable: false, randomized: false } as const;
export const RANDOM_RESAMPLE = { differentiable: true, randomized: true } as const;

/**
 * A preprocessing step from its name, strict schema and behaviour: `build` gets the parsed
 * options (an option the step does not read is refused naming both) and returns the step's maths.
 */
export function definePreprocessor<S extends z.ZodType>(
  name: string,
  schema: S,
  traits: { differentiable: boolean; randomized: boolean },
  build: (c: z.output<S>) => Pick<Preprocessor, 'apply' | 'surrogate'>,
): (params: unknown) => Preprocessor {
  return (params) => {
    const c = parseWith(name, schema, params);
    return { name, params: c as Record<string, unknown>, ...traits, ...build(c) };
  };
}

/**
 * The value of `a`, the gradient flowing to `s` only: `s + stopGradient(a − s)` without the
 * float rounding of the subtraction. tfjs has no stopGradient op; a custom gradient sends zeros
 * to `a` and dy to `s`.
 */
export const straightThrough = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a] = args as tf.Tensor[];
  return {
    value: tf.clone(a),
    gradFunc: (dy: tf.Tensor) => [tf.zerosLike(a), tf.clone(dy)],
  };
}) as (a: tf.Tensor, s: tf.Tensor) => tf.Tensor;

/**
 * A step computed in plain JS on the values: `fn` gets the flat NHWC data and returns new data
 * of the same length. The result is tied to x with a zero gradient (`out + 0·x`), so a plain
 * gradient through it is zero (as tfjs gives for round), not an error about a disconnected input.
 */
export function fromValues(x: tf.Tensor4D, fn: (data: Float32Array) => Float32Array): tf.Tensor4D {
  return tf.tidy(() => {
    const out = tf.tensor4d(fn(x.dataSync() as Float32Array), x.shape);
    return tf.add(out, tf.mul(x, 0));
  });
}

/** The identity surrogate (BPDA's most common choice for g(x) ≈ x). */
export function identity(x: tf.Tensor4D): tf.Tensor4D {
  return tf.clone(x);
}

export function needRng(name: string, rng: Rng | undefined): Rng {
  if (rng === undefined) {
    throw new ParryError('BAD_INPUT', `${name}: a randomised preprocessor needs an rng`);
  }
  return rng;
}

/** A random region of a `h`×`w` image: side fraction U(scale, 1), placed uniformly at random. */
export interface RandomRegion {
  rh: number;
  rw: number;
  top: number;
  left: number;
}

/**
 * Applies `perImage` to each image of the batch `x` `[b, h, w, c]` with its own random region
 * (draws in image order: the fraction, then top, then left), and stacks the results. Tidy.
 */
export function perImageRegions(
  x: tf.Tensor4D,
  scale: number,
  rng: Rng,
  perImage: (i: number, r: RandomRegion) => tf.Tensor4D,
): tf.Tensor4D {
  const [b, h, w] = x.shape;
  return tf.tidy(() => {
    const images: tf.Tensor4D[] = [];
    for (let i = 0; i < b; i++) {
      const s = scale + (1 - scale) * rng.next();
      const rh = Math.max(1, Math.min(h, Math.round(s * h)));
      const rw = Math.max(1, Math.min(w, Math.round(s * w)));
      const top = rng.int(h - rh + 1);
      const left = rng.int(w - rw + 1);
      images.push(perImage(i, { rh, rw, top, left }));
    }
    return tf.concat(images, 0);
  });
}

/**
 * Reflect padding (numpy 'reflect': no edge repeat) of `p` < h, w pixels on h and w, from slices,
 * reverses and concats: tfjs's MirrorPad gradient keeps only the centre of dy, which would drop
 * the padded pixels' share of the gradient.
 */
export function reflectPad(x: tf.Tensor4D, p: number): tf.Tensor4D {
  return tf.tidy(() => {
    if (p === 0) return tf.clone(x);
    const padAxis = (t: tf.Tensor4D, axis: 1 | 2): tf.Tensor4D => {
      const n = t.shape[axis];
      const begin = [0, 0, 0, 0];
      const size = [-1, -1, -1, -1];
      begin[axis] = 1;
      size[axis] = p;
      const head = tf.reverse(tf.slice(t, begin, size), axis);
      begin[axis] = n - 1 - p;
      const tail = tf.reverse(tf.slice(t, begin, size), axis);
      return tf.concat([head, t, tail], axis);
    };
    return padAxis(padAxis(x, 1), 2);
  });
}
