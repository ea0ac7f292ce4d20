/**
 * A learnable synthetic data set for tests and demos: each class is a random prototype image
 * (uniform in [0, 1]); an example is its class prototype plus Gaussian noise of std `noise`,
 * clipped to [0, 1]. Everything follows from `seed`: the prototypes are drawn first, then the
 * train and test splits each from their own forked generator, so the two splits share the
 * prototypes (a model fit on train generalises to test) but not a single noise draw.
 */
import { Rng } from '../engine/rng.js';
import { ParryError } from '../errors.js';
import type { Dataset, Split } from './dataset.js';

export interface SyntheticOptions {
  /** One example: [h, w, c]. */
  shape: [number, number, number] | number[];
  numClasses: number;
  /** Number of examples. */
  n: number;
  seed: number;
  /** Standard deviation of the per-pixel Gaussian noise; default 0.1. */
  noise?: number;
  /** Which split's noise to draw; default 'train'. */
  split?: Split;
}

/** Largest class count and largest array (prototypes, or examples) a synthetic set may have. */
export const MAX_CLASSES = 100_000;
export const MAX_VALUES = 2 ** 28;

/** Labels are balanced (n / numClasses each, up to one) and in random order. */
export function syntheticDataset(opts: SyntheticOptions): Dataset {
  const { shape, numClasses, n, seed, noise = 0.1, split = 'train' } = opts;
  const bad = (what: string): never => {
    throw new ParryError('BAD_OPTION', `syntheticDataset: ${what}`);
  };
  if (shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    bad(`shape must be [h, w, c] of positive integers, got [${shape.join(', ')}]`);
  }
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    bad(`numClasses must be an integer >= 2, got ${numClasses}`);
  }
  if (!Number.isInteger(n) || n < 0) bad(`n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    bad(`seed must be an integer in [0, 2^32), got ${seed}`);
  }
  if (!(noise >= 0 && Number.isFinite(noise))) bad(`noise must be finite and >= 0, got ${noise}`);
  if (split !== 'train' && split !== 'test') bad(`split must be 'train' or 'test', got '${split}'`);

  const [h, w, c] = shape;
  const size = h * w * c;
  // Refuse what cannot be allocated, before trying (a typed array tops out near 2^32 bytes).
  if (numClasses > MAX_CLASSES) bad(`numClasses ${numClasses} exceeds ${MAX_CLASSES}`);
  for (const [what, count] of [
    ['numClasses', numClasses],
    ['n', n],
  ] as const) {
    if (count * size > MAX_VALUES) {
      bad(
        `${what} ${count} × ${h}x${w}x${c} = ${count * size} values exceeds ${MAX_VALUES} (1 GiB of float32)`,
      );
    }
  }
  const rng = new Rng(seed);
  const prototypes = new Float32Array(numClasses * size);
  for (let i = 0; i < prototypes.length; i++) prototypes[i] = rng.next();
  const trainRng = rng.fork();
  const testRng = rng.fork();
  const r = split === 'train' ? trainRng : testRng;

  const order = r.permutation(n);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[order[i]] = i % numClasses;
  const x = new Float32Array(n * size);
  for (let i = 0; i < n; i++) {
    const proto = labels[i] * size;
    for (let j = 0; j < size; j++) {
      const v = prototypes[proto + j] + noise * r.normal();
      x[i * size + j] = Math.min(1, Math.max(0, v));
    }
  }
  return {
    name: `synthetic:${h}x${w}x${c}:${numClasses}:${n}/${split}`,
    x,
    shape: [n, h, w, c],
    labels,
    numClasses,
  };
}
