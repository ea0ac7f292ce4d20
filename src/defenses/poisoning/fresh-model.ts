/**
 * A model's architecture with fresh, seeded weights (for defences that retrain: loss filtering's
 * warm-up), and per-example cross-entropy losses of a classifier on a data set.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { Dataset } from '../../data/index.js';
import { exampleSize } from '../../data/index.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { TfjsClassifier } from '../../models/tfjs-classifier.js';

/** The LayersModel behind `model`, or UNSUPPORTED naming `what` needs it. */
export function layersModelOf(model: Classifier, what: string): tfl.LayersModel {
  const lm = model instanceof TfjsClassifier ? model.layersModel : undefined;
  if (lm === undefined) {
    throw new ParryError(
      'UNSUPPORTED',
      `${what}: retraining needs a TF.js LayersModel (a model trained by parry train); got ${model instanceof TfjsClassifier ? model.format : 'another classifier'}`,
    );
  }
  return lm;
}

/**
 * The architecture of `lm` with fresh weights drawn from `seed`: kernels Glorot-uniform
 * (±√(6/(fan_in + fan_out))), batch-norm scales and moving variances 1, everything else 0.
 */
export async function freshCopy(lm: tfl.LayersModel, seed: number): Promise<tfl.LayersModel> {
  const fresh = (await tfl.models.modelFromJSON(
    lm.toJSON(null, false) as never,
  )) as tfl.LayersModel;
  const rng = new Rng(seed);
  const values = fresh.weights.map((w) => {
    const shape = w.shape as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    const v = new Float32Array(size);
    if (/kernel/.test(w.name) && shape.length >= 2) {
      const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
      const fanIn = receptive * shape[shape.length - 2];
      const fanOut = receptive * shape[shape.length - 1];
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) v[i] = (2 * rng.next() - 1) * limit;
    } else if (/gamma|moving_variance/.test(w.name)) {
      v.fill(1);
    }
    return tf.tensor(v, shape);
  });
  fresh.setWeights(values);
  for (const t of values) t.dispose();
  return fresh;
}

/** Examples per forward pass. */
const BATCH = 256;

/** Cross-entropy of each example of `data` under `model` (natural log). */
export function exampleLosses(model: Classifier, data: Dataset): Float64Array {
  const n = data.shape[0];
  const per = exampleSize(data);
  const out = new Float64Array(n);
  for (let start = 0; start < n; start += BATCH) {
    const size = Math.min(BATCH, n - start);
    const loss = tf.tidy(() => {
      const x = tf.tensor(data.x.subarray(start * per, (start + size) * per), [
        size,
        ...data.shape.slice(1),
      ]);
      const y = tf.tensor1d(Int32Array.from(data.labels.subarray(start, start + size)), 'int32');
      const logits = model.logits(x);
      const logp = tf.logSoftmax(logits);
      return tf.neg(tf.sum(tf.mul(logp, tf.oneHot(y, model.numClasses)), 1));
    });
    out.set(loss.dataSync(), start);
    loss.dispose();
  }
  return out;
}
