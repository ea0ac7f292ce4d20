/**
 * How recognisable an inversion is. The target's confidence in the class says only that the
 * model is convinced (noise can convince it); the L2 distance to the class mean of real data says
 * whether the reconstruction looks like the class. The same distance to every other class's mean
 * is the yardstick: a reconstruction nearer its own class mean than to the others' is
 * recognisable, one equally far from all is noise. Means are plain float64 arithmetic over a data
 * set's typed arrays; no tensors are held.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Dataset, exampleSize } from '../../../data/dataset.js';
import { check } from '../../../errors.js';
import type { Classifier } from '../../../models/classifier.js';

export interface ClassMeans {
  /** One example's shape, e.g. [28, 28, 1]. */
  shape: number[];
  /** Mean image per class (`null` for a class without examples). */
  means: (Float64Array | null)[];
  /** Examples per class. */
  counts: number[];
}

/** The mean example of every class 0..numClasses−1 of `data`. */
export function classMeans(data: Dataset, numClasses: number): ClassMeans {
  const d = exampleSize(data);
  const sums = Array.from({ length: numClasses }, () => new Float64Array(d));
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < data.labels.length; i++) {
    const k = data.labels[i];
    check(
      k >= 0 && k < numClasses,
      () => `classMeans: label ${k} (example ${i}) is not a class in [0, ${numClasses})`,
    );
    counts[k]++;
    const s = sums[k];
    for (let j = 0, o = i * d; j < d; j++) s[j] += data.x[o + j];
  }
  const means = sums.map((s, k) => (counts[k] === 0 ? null : s.map((v) => v / counts[k])));
  return { shape: data.shape.slice(1), means, counts };
}

export interface InversionScore {
  class: number;
  /** The target's softmax probability of the class at the reconstruction. */
  confidence: number;
  /** L2 distance to the class's own mean (NaN when the class has no examples). */
  distanceOwn: number;
  /** Mean L2 distance to the means of the other classes that have examples. */
  distanceOthers: number;
  /** The class whose mean is nearest. */
  nearestClass: number;
  /** L2 distance to every class mean (NaN for classes without examples). */
  distances: number[];
}

function l2(a: ArrayLike<number>, offset: number, b: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < b.length; j++) s += (a[offset + j] - b[j]) ** 2;
  return Math.sqrt(s);
}

/**
 * Scores of reconstructions `x` (`[classes.length, ...inputShape]`, one per class in `classes`
 * order) against the target and the class means. Reads x and the target's answers once.
 */
export async function scoreInversions(
  model: Classifier,
  x: tf.Tensor,
  classes: readonly number[],
  means: ClassMeans,
): Promise<InversionScore[]> {
  check(
    x.shape[0] === classes.length && tf.util.arraysEqual(x.shape.slice(1), means.shape),
    () =>
      `scoreInversions: x must have shape [${classes.length}, ${means.shape}], got [${x.shape}]`,
  );
  const probs = tf.tidy(() => tf.softmax(model.logits(x)));
  const [p, v] = await Promise.all([probs.data(), x.data()]);
  probs.dispose();
  const d = v.length / classes.length;
  const k = model.numClasses;
  return classes.map((c, i) => {
    const distances = means.means.map((m) => (m === null ? Number.NaN : l2(v, i * d, m)));
    const others = distances.filter((dist, j) => j !== c && !Number.isNaN(dist));
    let nearestClass = -1;
    distances.forEach((dist, j) => {
      if (!Number.isNaN(dist) && (nearestClass < 0 || dist < distances[nearestClass])) {
        nearestClass = j;
      }
    });
    return {
      class: c,
      confidence: p[i * k + c],
      distanceOwn: distances[c] ?? Number.NaN,
      distanceOthers:
        others.length === 0 ? Number.NaN : others.reduce((a, b) => a + b, 0) / others.length,
      nearestClass,
      distances,
    };
  });
}
