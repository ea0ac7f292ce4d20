/**
 * Fine-pruning (Liu, Dolan-Gavitt & Garg, "Fine-Pruning: Defending Against Backdooring Attacks on
 * Deep Neural Networks", RAID 2018). A backdoor hides in channels that clean inputs leave dormant:
 * the channels of one convolution (default: the last) are pruned in increasing order of their
 * mean activation on clean data, as long as the clean accuracy stays within `maxAccuracyDrop` of
 * the unpruned model's (and at most `maxFraction` of the channels go); then the model is
 * fine-tuned on the clean data. A channel is pruned by zeroing its kernel and bias and the
 * weights that read it in the next layer with weights (a convolution, or a dense layer behind
 * a flatten); with ReLU activations its output and every gradient that would revive it are
 * then zero, so fine-tuning keeps it pruned. Between the pruned convolution and that layer only
 * pooling, flatten, dropout and activation layers may sit.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { Dataset } from '../../data/index.js';
import type { WorkerPool } from '../../engine/pool.js';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { featureModel } from '../../models/features.js';
import type { TfjsClassifier } from '../../models/tfjs-classifier.js';
import { parseWith } from '../../options.js';
import { trainModel } from '../../train/loop.js';
import { layersModelOf } from './fresh-model.js';

export const finePruningSchema = z
  .strictObject({
    /** Name of the convolution to prune (default: the last Conv2D). */
    layer: z.string().min(1).optional().describe('convolution to prune (default: the last Conv2D)'),
    /** Largest drop of clean accuracy pruning may cause (absolute, e.g. 0.04 = 4 points). */
    maxAccuracyDrop: z
      .number()
      .min(0)
      .max(1)
      .default(0.04)
      .describe('largest drop of clean accuracy pruning may cause'),
    /** Largest share of the layer's channels pruned. */
    maxFraction: z.number().gt(0).max(1).default(0.9).describe('largest share of channels pruned'),
    /** Fine-tuning epochs on the clean data after pruning (0: prune only). */
    epochs: z.number().int().min(0).default(2).describe('fine-tuning epochs on the clean data'),
    batchSize: z.number().int().min(1).default(32).describe('fine-tuning batch size'),
    lr: z.number().positive().default(1e-3).describe('fine-tuning learning rate (Adam)'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(0xffffffff)
      .default(0)
      .describe('seed of the fine-tuning shuffles'),
  })
  .describe('fine-pruning');
export type FinePruningConfig = z.infer<typeof finePruningSchema>;

export interface FinePruningResult {
  layer: string;
  channels: number;
  /** Pruned channels, in the order they were pruned (most dormant first). */
  pruned: number[];
  /** Mean activation of every channel on the clean data. */
  meanActivation: number[];
  accuracyBefore: number;
  accuracyPruned: number;
  /** After fine-tuning (equal to accuracyPruned with 0 epochs). */
  accuracyAfter: number;
}

const PASS = new Set(['MaxPooling2D', 'AveragePooling2D', 'Dropout', 'Activation', 'Flatten']);

interface Plan {
  conv: tfl.layers.Layer;
  convIndex: number;
  consumer: tfl.layers.Layer;
  /** Whether the consumer is a dense layer reading a flattened [.., C] map. */
  dense: boolean;
  channels: number;
}

function plan(lm: tfl.LayersModel, name: string | undefined): Plan {
  const layers = lm.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const convs = layers.flatMap((l, i) => (l.getClassName() === 'Conv2D' ? [i] : []));
  const fail = (what: string): never => {
    throw new ParryError('UNSUPPORTED', `fine-pruning: ${what}`);
  };
  if (convs.length === 0) fail('the model has no Conv2D layer to prune');
  const convIndex =
    name === undefined ? convs[convs.length - 1] : layers.findIndex((l) => l.name === name);
  if (convIndex < 0) {
    throw new ParryError(
      'BAD_OPTION',
      `fine-pruning: no layer named '${name}' (convolutions: ${convs.map((i) => layers[i].name).join(', ')})`,
    );
  }
  const conv = layers[convIndex];
  if (conv.getClassName() !== 'Conv2D') {
    throw new ParryError(
      'BAD_OPTION',
      `fine-pruning: layer '${name}' is a ${conv.getClassName()}, not a Conv2D`,
    );
  }
  const activation = (conv.getConfig().activation as string | undefined) ?? 'linear';
  if (activation !== 'relu')
    fail(`layer '${conv.name}' has activation ${activation}; pruning needs relu`);
  let k = convIndex + 1;
  let flattened = false;
  while (k < layers.length && PASS.has(layers[k].getClassName())) {
    const l = layers[k];
    if (l.getClassName() === 'Flatten') flattened = true;
    if (l.getClassName() === 'Activation' && l.getConfig().activation !== 'relu') {
      fail(`layer '${l.name}' (${String(l.getConfig().activation)}) sits after '${conv.name}'`);
    }
    k++;
  }
  if (k >= layers.length) fail(`no layer with weights reads '${conv.name}'`);
  const consumer = layers[k];
  const kind = consumer.getClassName();
  if (!(kind === 'Conv2D' || (kind === 'Dense' && flattened))) {
    fail(`'${consumer.name}' (${kind}) reads '${conv.name}'; only Conv2D or Flatten→Dense can`);
  }
  const channels = (conv.getWeights()[0].shape as number[])[3];
  return { conv, convIndex: layers.indexOf(conv), consumer, dense: kind === 'Dense', channels };
}

/** Zeroes channel `c` of the plan's convolution and its consumer's weights that read it. */
function pruneChannel(p: Plan, c: number): void {
  tf.tidy(() => {
    const [kernel, bias] = p.conv.getWeights();
    const cMask = tf.reshape(tf.oneHot(tf.tensor1d([c], 'int32'), p.channels), [p.channels]);
    const keep = tf.sub(1, tf.cast(cMask, 'float32'));
    p.conv.setWeights([tf.mul(kernel, keep), ...(bias ? [tf.mul(bias, keep)] : [])]);
    const [ck, ...rest] = p.consumer.getWeights();
    let inMask: tf.Tensor;
    if (p.dense) {
      // A flattened channels-last map: row r reads channel r mod C.
      const rows = ck.shape[0];
      const r = tf.range(0, rows, 1, 'int32');
      inMask = tf.reshape(tf.cast(tf.notEqual(tf.mod(r, p.channels), c), 'float32'), [rows, 1]);
    } else {
      inMask = tf.reshape(keep, [1, 1, p.channels, 1]);
    }
    p.consumer.setWeights([tf.mul(ck, inMask), ...rest]);
  });
}

const BATCH = 256;

function accuracy(model: TfjsClassifier, data: Dataset): number {
  const n = data.shape[0];
  const per = data.x.length / n;
  let correct = 0;
  for (let s = 0; s < n; s += BATCH) {
    const size = Math.min(BATCH, n - s);
    const pred = tf.tidy(() => {
      const x = tf.tensor(data.x.subarray(s * per, (s + size) * per), [
        size,
        ...data.shape.slice(1),
      ]);
      // The tfjs path: the weights change under it, so no native session may serve it.
      return tf.argMax(model.layersModel!.apply(x) as tf.Tensor, 1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let i = 0; i < size; i++) if (p[i] === data.labels[s + i]) correct++;
  }
  return n === 0 ? 0 : correct / n;
}

/**
 * Fine-prunes the LayersModel behind `model` in place with the clean data `clean`; `model`'s
 * native session, if any, is stale afterwards (save and reload the model).
 */
export async function finePrune(
  classifier: Classifier,
  clean: Dataset,
  config: z.input<typeof finePruningSchema> = {},
  ctx: { pool?: WorkerPool; onProgress?: (fraction: number) => void } = {},
): Promise<FinePruningResult> {
  const c = parseWith('fine-pruning', finePruningSchema, config);
  const lm = layersModelOf(classifier, 'fine-pruning');
  const model = classifier as TfjsClassifier;
  if (model.mean !== undefined || model.std !== undefined) {
    throw new ParryError(
      'UNSUPPORTED',
      'fine-pruning: models with input normalisation are not supported yet',
    );
  }
  const p = plan(lm, c.layer);
  // Mean activation per channel on the clean data (channels-last: feature index mod C).
  const fm = featureModel(model);
  const sums = new Float64Array(p.channels);
  const n = clean.shape[0];
  const per = clean.x.length / n;
  let positions = 0;
  for (let s = 0; s < n; s += BATCH) {
    const size = Math.min(BATCH, n - s);
    const f = tf.tidy(() => {
      const x = tf.tensor(clean.x.subarray(s * per, (s + size) * per), [
        size,
        ...clean.shape.slice(1),
      ]);
      const r = fm.activations(x, [p.convIndex]);
      return tf.sum(tf.reshape(r.features[0], [-1, p.channels]), 0);
    });
    const v = f.dataSync();
    f.dispose();
    for (let ch = 0; ch < p.channels; ch++) sums[ch] += v[ch];
  }
  const convOut = p.conv.outputShape as number[];
  positions = n * convOut[1] * convOut[2];
  const meanActivation = Array.from(sums, (v) => v / Math.max(positions, 1));
  const order = meanActivation
    .map((_, i) => i)
    .sort((a, b) => meanActivation[a] - meanActivation[b]);
  const accuracyBefore = accuracy(model, clean);
  const limit = Math.floor(c.maxFraction * p.channels);
  const pruned: number[] = [];
  let accuracyPruned = accuracyBefore;
  for (const ch of order.slice(0, limit)) {
    const saved = [...p.conv.getWeights(), ...p.consumer.getWeights()].map((t) => t.clone());
    pruneChannel(p, ch);
    const acc = accuracy(model, clean);
    if (acc < accuracyBefore - c.maxAccuracyDrop) {
      const nConv = p.conv.getWeights().length;
      p.conv.setWeights(saved.slice(0, nConv));
      p.consumer.setWeights(saved.slice(nConv));
      for (const t of saved) t.dispose();
      break;
    }
    for (const t of saved) t.dispose();
    pruned.push(ch);
    accuracyPruned = acc;
    ctx.onProgress?.((0.5 * pruned.length) / limit);
  }
  ctx.onProgress?.(0.5);
  let accuracyAfter = accuracyPruned;
  if (c.epochs > 0) {
    await trainModel(
      lm,
      clean,
      { epochs: c.epochs, batchSize: c.batchSize, lr: c.lr, seed: c.seed },
      {
        pool: ctx.pool,
        onBatch: (b) =>
          ctx.onProgress?.(0.5 + (0.5 * (b.epoch - 1 + b.batch / b.numBatches)) / c.epochs),
      },
    );
    accuracyAfter = accuracy(model, clean);
  }
  ctx.onProgress?.(1);
  return {
    layer: p.conv.name,
    channels: p.channels,
    pruned,
    meanActivation,
    accuracyBefore,
    accuracyPruned,
    accuracyAfter,
  };
}
