/**
 * Internal activations (features) of a Sequential tfjs LayersModel behind a TfjsClassifier, by applying its
 * layers one after another (the same ops as `logits`, so gradients flow to the input). Each
 * activation is flattened to `[batch, features]`. Dropout layers can be run in training mode
 * (MC dropout) without switching any other layer (batch norm keeps its moving statistics).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../errors.js';
import type { Classifier } from './classifier.js';
import { DropoutSeeder } from './dropout.js';
import { TfjsClassifier } from './tfjs-classifier.js';

/** Examples per forward pass when reading features. */
const FEATURE_BATCH = 128;

const sliceRows = (x: tf.Tensor, start: number, size: number) =>
  tf.slice(x, [start, ...x.shape.slice(1).map(() => 0)], [size, ...x.shape.slice(1)]);

export interface FeatureModel {
  /** Layers in order; `activations` indexes into this list. */
  readonly layers: readonly tfl.layers.Layer[];
  /** Index of the layer whose output feeds the last layer (the penultimate activation). */
  readonly penultimate: number;
  /** Indices of layers whose outputs carry information (not Flatten, Dropout, reshapes). */
  readonly hidden: number[];
  readonly hasDropout: boolean;
  /**
   * Outputs of the layers at `indices` `[batch, features]` each, and the logits. Caller owns all.
   * With `dropout`, Dropout layers sample masks (MC dropout) from `dropout.seed`: the same seed
   * and batch shape give the same masks.
   */
  activations(
    x: tf.Tensor,
    indices: readonly number[],
    dropout?: { seed: number },
  ): { features: tf.Tensor2D[]; logits: tf.Tensor2D };
}

const PASS_THROUGH = new Set(['Flatten', 'Dropout', 'Reshape', 'InputLayer', 'Activation']);

/** A FeatureModel for a TfjsClassifier around a Sequential LayersModel; UNSUPPORTED otherwise. */
export function featureModel(model: Classifier): FeatureModel {
  const lm = model instanceof TfjsClassifier ? model.layersModel : undefined;
  if (lm == null) {
    throw new ParryError(
      'UNSUPPORTED',
      'featureModel: internal activations need a TfjsClassifier around a LayersModel',
    );
  }
  const layers = lm.layers.filter((l) => l.getClassName() !== 'InputLayer');
  if (lm.getClassName() !== 'Sequential' && !isChain(lm, layers)) {
    throw new ParryError(
      'UNSUPPORTED',
      'featureModel: only Sequential (chain) models are supported',
    );
  }
  if (layers.length < 2) {
    throw new ParryError('UNSUPPORTED', 'featureModel: the model needs at least two layers');
  }
  const tc = model as TfjsClassifier;
  const mean = tc.mean && tf.keep(tf.tensor1d(tc.mean));
  const std = tc.std && tf.keep(tf.tensor1d(tc.std));
  const hidden = layers.flatMap((l, i) => (PASS_THROUGH.has(l.getClassName()) ? [] : [i]));
  return {
    layers,
    penultimate: layers.length - 2,
    hidden,
    hasDropout: layers.some((l) => l.getClassName() === 'Dropout'),
    activations(x, indices, dropout) {
      tc.checkInput(x);
      let seeder: DropoutSeeder | undefined;
      if (dropout) {
        seeder = new DropoutSeeder(layers);
        seeder.seed(dropout.seed);
      }
      try {
        return tf.tidy(() => {
          let z = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
          if (mean) z = tf.sub(z, mean);
          if (std) z = tf.div(z, std);
          const features: tf.Tensor2D[] = new Array(indices.length);
          layers.forEach((layer, i) => {
            const training = dropout !== undefined && layer.getClassName() === 'Dropout';
            z = layer.apply(z, { training }) as tf.Tensor;
            indices.forEach((want, k) => {
              if (want === i) features[k] = tf.reshape(z, [z.shape[0], -1]) as tf.Tensor2D;
            });
          });
          return { features, logits: z as tf.Tensor2D };
        });
      } finally {
        seeder?.restore();
      }
    },
  };
}

/** A functional model whose layers form a single chain (each layer feeds only the next). */
function isChain(lm: tfl.LayersModel, layers: tfl.layers.Layer[]): boolean {
  return (
    lm.inputs.length === 1 &&
    lm.outputs.length === 1 &&
    layers.every((l) => l.inboundNodes.length === 1)
  );
}

/** Activations of one layer for all of x, read back in float64 (a fit-time boundary). */
export function readFeatures(fm: FeatureModel, x: tf.Tensor, layer: number): Float64Array {
  const n = x.shape[0];
  const parts: Float32Array[] = [];
  for (let start = 0; start < n; start += FEATURE_BATCH) {
    const size = Math.min(FEATURE_BATCH, n - start);
    const f = tf.tidy(() => {
      const r = fm.activations(sliceRows(x, start, size), [layer]);
      r.logits.dispose();
      return r.features[0];
    });
    parts.push(f.dataSync() as Float32Array);
    f.dispose();
  }
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Float64Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
