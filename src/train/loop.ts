/**
 * The one training loop of `parry train`: mini-batch training of a tfjs-layers model on logits
 * with softmax cross-entropy. Robust-training methods plug in by replacing the batch loss
 * (`lossFn`), so they share shuffling, progress, cancellation and bookkeeping.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { Dataset } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import { ParryError } from '../errors.js';
import { countCorrect, smoothedCrossEntropy } from './losses.js';

export const trainConfigSchema = z
  .object({
    epochs: z.number().int().min(1).default(5),
    batchSize: z.number().int().min(1).default(128),
    lr: z.number().positive().default(1e-3),
    optimizer: z.enum(['adam', 'sgd', 'momentum']).default('adam'),
    /** L2 penalty (λ/2)·Σw² on kernels (not biases). */
    weightDecay: z.number().min(0).default(0),
    labelSmoothing: z.number().min(0).max(1).default(0),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type TrainConfig = z.infer<typeof trainConfigSchema>;

export interface BatchProgress {
  epoch: number;
  batch: number;
  numBatches: number;
  /** Mean loss and accuracy over the epoch so far. */
  loss: number;
  accuracy: number;
  examplesPerSecond: number;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  accuracy: number;
  seconds: number;
  [extra: string]: number;
}

/** Per-batch loss: returns the per-example loss `[batch]` and the logits used for accuracy. */
export type LossFn = (
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
) => { loss: tf.Tensor1D; logits: tf.Tensor2D };

export interface TrainHooks {
  onBatch?: (p: BatchProgress) => void;
  /** Called after each epoch; may add fields (e.g. test accuracy) to the record. */
  onEpoch?: (r: EpochRecord) => void | Promise<void>;
  signal?: AbortSignal;
  lossFn?: LossFn;
}

export interface TrainResult {
  config: TrainConfig;
  epochs: EpochRecord[];
  seconds: number;
}

/** Plain cross-entropy on the model's training-mode logits. */
export function standardLoss(labelSmoothing: number): LossFn {
  return (model, x, labels) => {
    const logits = model.apply(x, { training: true }) as tf.Tensor2D;
    return { loss: smoothedCrossEntropy(logits, labels, labelSmoothing), logits };
  };
}

/** Trains `model` in place on `data`. Reads the loss from the backend every few batches only. */
export async function trainModel(
  model: tfl.LayersModel,
  data: Dataset,
  config: Partial<TrainConfig>,
  hooks: TrainHooks = {},
): Promise<TrainResult> {
  const cfg = parseConfig(config);
  const rng = new Rng(cfg.seed);
  const optimizer = makeOptimizer(cfg);
  const lossFn = hooks.lossFn ?? standardLoss(cfg.labelSmoothing);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = model.trainableWeights.filter((w) => /kernel/.test(w.name)).map((w) => w.read());
  const n = data.shape[0];
  const per = data.shape.slice(1).reduce((a, b) => a * b, 1);
  const numBatches = Math.ceil(n / cfg.batchSize);
  const epochs: EpochRecord[] = [];
  const started = performance.now();
  const xBatch = new Float32Array(cfg.batchSize * per);
  const yBatch = new Int32Array(cfg.batchSize);

  try {
    for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
      const epochStart = performance.now();
      const order = rng.permutation(n);
      let lossSum = tf.scalar(0);
      let correctSum = tf.scalar(0, 'int32');
      let seen = 0;
      for (let b = 0; b < numBatches; b++) {
        if (hooks.signal?.aborted) {
          tf.dispose([lossSum, correctSum]);
          throw new ParryError('INTERNAL', 'train: aborted');
        }
        const m = Math.min(cfg.batchSize, n - b * cfg.batchSize);
        for (let i = 0; i < m; i++) {
          const j = order[b * cfg.batchSize + i];
          xBatch.set(data.x.subarray(j * per, (j + 1) * per), i * per);
          yBatch[i] = data.labels[j];
        }
        const [newLoss, newCorrect] = tf.tidy(() => {
          const x = tf.tensor(xBatch.subarray(0, m * per), [m, ...data.shape.slice(1)]);
          const y = tf.tensor1d(yBatch.subarray(0, m), 'int32');
          let correct: tf.Scalar | undefined;
          const loss = optimizer.minimize(
            () => {
              const out = lossFn(model, x, y);
              correct = tf.keep(countCorrect(out.logits, y));
              let total = tf.mean(out.loss) as tf.Scalar;
              if (cfg.weightDecay > 0) {
                const l2 = tf.addN(kernels.map((w) => tf.sum(tf.square(w))));
                total = tf.add(total, tf.mul(l2, cfg.weightDecay / 2));
              }
              return total;
            },
            true,
            vars,
          ) as tf.Scalar;
          const totals: [tf.Scalar, tf.Scalar] = [
            tf.add(lossSum, tf.mul(loss, m)),
            tf.add(correctSum, correct!),
          ];
          correct!.dispose();
          return totals;
        });
        lossSum.dispose();
        correctSum.dispose();
        lossSum = newLoss;
        correctSum = newCorrect;
        seen += m;
        if (hooks.onBatch && (b % 10 === 9 || b === numBatches - 1)) {
          const secs = (performance.now() - epochStart) / 1000;
          hooks.onBatch({
            epoch,
            batch: b + 1,
            numBatches,
            loss: (await lossSum.data())[0] / seen,
            accuracy: (await correctSum.data())[0] / seen,
            examplesPerSecond: seen / secs,
          });
          // Let timers run (progress redraws, abort signals): on wasm every await above
          // resolves as a microtask and would otherwise starve the event loop.
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const record: EpochRecord = {
        epoch,
        loss: (await lossSum.data())[0] / seen,
        accuracy: (await correctSum.data())[0] / seen,
        seconds: (performance.now() - epochStart) / 1000,
      };
      lossSum.dispose();
      correctSum.dispose();
      await hooks.onEpoch?.(record);
      epochs.push(record);
    }
  } finally {
    optimizer.dispose();
  }
  return { config: cfg, epochs, seconds: (performance.now() - started) / 1000 };
}

export function parseConfig(config: Partial<TrainConfig>): TrainConfig {
  const r = trainConfigSchema.safeParse(config);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ParryError(
      'BAD_OPTION',
      `train: ${issue.path.join('.') || 'config'}: ${issue.message}`,
    );
  }
  return r.data;
}

function makeOptimizer(cfg: TrainConfig): tf.Optimizer {
  switch (cfg.optimizer) {
    case 'adam':
      return tf.train.adam(cfg.lr);
    case 'sgd':
      return tf.train.sgd(cfg.lr);
    case 'momentum':
      return tf.train.momentum(cfg.lr, 0.9);
  }
}
