/**
 * Neural Cleanse (Wang et al., "Neural Cleanse: Identifying and Mitigating Backdoor Attacks in
 * Neural Networks", S&P 2019). For every class t, the smallest trigger that sends clean inputs to
 * t: a mask m ∈ [0, 1]^(H×W) and a pattern p within the input bounds, applied as
 * x′ = (1 − m)⊙x + m⊙p, found by Adam on CE(f(x′), t) + λ‖m‖₁ with the paper's schedule for λ
 * (0 until the attack succeeds, then `initCost`, multiplied by 1.5 after `patience` rounds at or
 * above the success threshold and divided by 1.5^1.5 after `patience` rounds below; the smallest
 * mask reaching the threshold is kept). A backdoored class needs a much smaller mask than the
 * others: the anomaly index of each class's L1 norm is |‖m_t‖₁ − median| / (1.4826·MAD), and a
 * class below the median with an index above `anomalyThreshold` (2) is flagged.
 *
 * Parameterisation as in the reference code: m = tanh(a)/(2 − ε) + ½, p = lo + (hi − lo)·(tanh(b)/
 * (2 − ε) + ½), a and b drawn from a seeded uniform start. One "round" is `stepsPerRound` Adam
 * steps (lr 0.1, β 0.5, 0.9) on mini-batches of the clean examples; the attack success rate of a
 * round is measured on its own batches, before each step.
 *
 * Mitigation (`unlearn`): fine-tune on clean data in which a fraction of the examples carry a
 * flagged class's reversed trigger with their true label (the paper: 20%, one epoch).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { z } from 'zod';
import type { Dataset } from '../../data/index.js';
import { exampleSize } from '../../data/index.js';
import type { WorkerPool } from '../../engine/pool.js';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import type { Classifier } from '../../models/classifier.js';
import { parseWith } from '../../options.js';
import { trainModel } from '../../train/loop.js';

export const neuralCleanseSchema = z
  .strictObject({
    /** Optimisation rounds per class (at most; early stopping as in the reference). */
    rounds: z.number().int().min(1).max(10_000).default(30).describe('rounds per class (at most)'),
    stepsPerRound: z.number().int().min(1).default(10).describe('Adam steps per round'),
    batchSize: z.number().int().min(1).default(64).describe('examples per optimisation step'),
    lr: z
      .number()
      .positive()
      .default(0.1)
      .describe('Adam learning rate (Neural Cleanse: of the mask and pattern)'),
    /** λ once the attack first succeeds for `patience` rounds. */
    initCost: z.number().positive().default(1e-3).describe('λ once the attack first succeeds'),
    /** Attack success rate a mask must reach to count. */
    successThreshold: z
      .number()
      .gt(0)
      .max(1)
      .default(0.99)
      .describe('attack success rate a mask must reach'),
    patience: z.number().int().min(1).default(5).describe('rounds before λ moves'),
    /** Anomaly index above which a class (with a mask below the median) is flagged. */
    anomalyThreshold: z
      .number()
      .positive()
      .default(2)
      .describe('anomaly index above which a class is flagged'),
    /** Classes to reverse (default: all). */
    classes: z
      .array(z.coerce.number().int().min(0))
      .min(1)
      .optional()
      .describe('classes to reverse (default: all)'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(0xffffffff)
      .default(0)
      .describe('seed of the starts and batches'),
  })
  .describe('neural cleanse');
export type NeuralCleanseConfig = z.infer<typeof neuralCleanseSchema>;

export interface ReversedTrigger {
  target: number;
  /** H·W mask values in [0, 1]. */
  mask: Float32Array;
  /** H·W·C pattern values within the model's bounds (NHWC order). */
  pattern: Float32Array;
  /** ‖m‖₁ of the kept mask. */
  l1: number;
  /** Attack success rate of the kept mask (its round's). */
  attackSuccess: number;
  /** Whether any mask reached the success threshold (else the last one is kept). */
  reached: boolean;
  rounds: number;
}

export interface NeuralCleanseResult {
  triggers: ReversedTrigger[];
  /** Per reversed class: L1 norm, anomaly index, flagged. */
  classes: {
    class: number;
    l1: number;
    anomalyIndex: number;
    attackSuccess: number;
    flagged: boolean;
  }[];
  median: number;
  /** 1.4826 × the median absolute deviation of the L1 norms. */
  mad: number;
  flagged: number[];
}

const EPS = 1e-7;

/** Anomaly indices |l − median| / (1.4826·MAD); `NaN` everywhere when MAD is 0. */
export function anomalyIndices(values: readonly number[]): {
  median: number;
  mad: number;
  indices: number[];
} {
  const median = medianOf(values);
  const mad = 1.4826 * medianOf(values.map((v) => Math.abs(v - median)));
  return {
    median,
    mad,
    indices: values.map((v) => (mad === 0 ? Number.NaN : Math.abs(v - median) / mad)),
  };
}

function medianOf(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** x′ = (1 − m)⊙x + m⊙p, with m [H, W, 1] (or [H, W]) broadcast over channels. */
export function stamp(x: tf.Tensor, mask: tf.Tensor, pattern: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const m = mask.rank === 2 ? tf.expandDims(mask, -1) : mask;
    return tf.add(tf.mul(tf.sub(1, m), x), tf.mul(m, pattern));
  });
}

/**
 * The smallest trigger sending the clean images `clean` ([n, H, W, C]) to class `target`, by the
 * paper's optimisation (see the module comment). `rng` draws the start and the batch order.
 */
export function reverseTrigger(
  model: Classifier,
  clean: tf.Tensor4D,
  target: number,
  config: z.input<typeof neuralCleanseSchema>,
  rng: Rng,
): ReversedTrigger {
  const c = parseWith('neural cleanse', neuralCleanseSchema, config);
  const [n, h, w, ch] = clean.shape;
  const [lo, hi] = model.bounds;
  const toParam = (u: number) => Math.atanh((u - 0.5) * (2 - EPS));
  // tf.variable copies its initial value; the tidy frees the copies' sources.
  const start = (size: number, shape: number[]) =>
    tf.tidy(() =>
      tf.variable(
        tf.tensor(
          Float32Array.from({ length: size }, () => toParam(rng.next())),
          shape,
        ),
      ),
    );
  const a = start(h * w, [h, w, 1]);
  const b = start(h * w * ch, [h, w, ch]);
  const maskOf = () => tf.add(tf.div(tf.tanh(a), 2 - EPS), 0.5);
  const patternOf = () => tf.add(lo, tf.mul(hi - lo, tf.add(tf.div(tf.tanh(b), 2 - EPS), 0.5)));
  const optimizer = tf.train.adam(c.lr, 0.5, 0.9);
  const costMultiplierUp = 1.5;
  const costMultiplierDown = 1.5 ** 1.5;
  let cost = 0;
  let costSetCounter = 0;
  let upCounter = 0;
  let downCounter = 0;
  let upFlag = false;
  let downFlag = false;
  let best: ReversedTrigger | undefined;
  let earlyStopCounter = 0;
  let earlyStopBest = Number.POSITIVE_INFINITY;
  let order: Int32Array = new Int32Array(0);
  let cursor = n;
  const nextBatch = () => {
    const size = Math.min(c.batchSize, n);
    const idx = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      if (cursor >= n) {
        order = rng.permutation(n);
        cursor = 0;
      }
      idx[i] = order[cursor++];
    }
    return idx;
  };
  let last = { l1: 0, attackSuccess: 0 };
  let rounds = 0;
  try {
    for (let round = 0; round < c.rounds; round++) {
      rounds = round + 1;
      let hits = 0;
      let seen = 0;
      for (let s = 0; s < c.stepsPerRound; s++) {
        const idx = nextBatch();
        const costNow = cost;
        const correct = tf.tidy(() => {
          const x = tf.gather(clean, tf.tensor1d(idx, 'int32'));
          const labels = tf.fill([idx.length], target, 'int32');
          let ok: tf.Tensor | undefined;
          optimizer.minimize(
            () => {
              const logits = model.logits(stamp(x, maskOf(), patternOf()));
              ok = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'int32')));
              const ce = tf.losses.softmaxCrossEntropy(tf.oneHot(labels, model.numClasses), logits);
              return tf.add(ce, tf.mul(costNow, tf.sum(maskOf()))) as tf.Scalar;
            },
            false,
            [a, b],
          );
          return ok!;
        });
        hits += correct.dataSync()[0];
        correct.dispose();
        seen += idx.length;
      }
      const attackSuccess = hits / seen;
      // The mask as it was during the round's last step is close enough; read the current one.
      const mask = tf.tidy(maskOf);
      const norm = tf.sum(mask);
      const l1 = norm.dataSync()[0];
      norm.dispose();
      last = { l1, attackSuccess };
      if (attackSuccess >= c.successThreshold && (best === undefined || l1 < best.l1)) {
        const pattern = tf.tidy(patternOf);
        best = {
          target,
          mask: mask.dataSync() as Float32Array,
          pattern: pattern.dataSync() as Float32Array,
          l1,
          attackSuccess,
          reached: true,
          rounds,
        };
        pattern.dispose();
      }
      mask.dispose();
      // Early stopping: no 1% improvement of the best norm for 5·patience rounds, λ moved both ways.
      if (best !== undefined) {
        earlyStopCounter = best.l1 >= 0.99 * earlyStopBest ? earlyStopCounter + 1 : 0;
        earlyStopBest = Math.min(best.l1, earlyStopBest);
      }
      if (upFlag && downFlag && earlyStopCounter >= 5 * c.patience) break;
      // λ schedule.
      if (cost === 0 && attackSuccess >= c.successThreshold) {
        costSetCounter++;
        if (costSetCounter >= c.patience) {
          cost = c.initCost;
          upCounter = 0;
          downCounter = 0;
          upFlag = false;
          downFlag = false;
        }
      } else {
        costSetCounter = 0;
      }
      if (attackSuccess >= c.successThreshold) {
        upCounter++;
        downCounter = 0;
      } else {
        upCounter = 0;
        downCounter++;
      }
      if (upCounter >= c.patience) {
        upCounter = 0;
        cost *= costMultiplierUp;
        upFlag = true;
      } else if (downCounter >= c.patience) {
        downCounter = 0;
        cost /= costMultiplierDown;
        downFlag = true;
      }
    }
    if (best !== undefined) return { ...best, rounds };
    const mask = tf.tidy(maskOf);
    const pattern = tf.tidy(patternOf);
    const out: ReversedTrigger = {
      target,
      mask: mask.dataSync() as Float32Array,
      pattern: pattern.dataSync() as Float32Array,
      l1: last.l1,
      attackSuccess: last.attackSuccess,
      reached: false,
      rounds,
    };
    mask.dispose();
    pattern.dispose();
    return out;
  } finally {
    a.dispose();
    b.dispose();
    optimizer.dispose();
  }
}

/**
 * Neural Cleanse on `model` with the clean examples `clean` (a data set's images; labels unused):
 * a reversed trigger per class, their anomaly indices, the flagged classes.
 */
export function neuralCleanse(
  model: Classifier,
  clean: Dataset,
  config: z.input<typeof neuralCleanseSchema> = {},
  onProgress?: (done: number, total: number) => void,
): NeuralCleanseResult {
  const c = parseWith('neural cleanse', neuralCleanseSchema, config);
  const classes = c.classes ?? Array.from({ length: model.numClasses }, (_, i) => i);
  const bad = classes.find((t) => t >= model.numClasses);
  if (bad !== undefined) {
    throw new ParryError(
      'BAD_OPTION',
      `neural cleanse: class ${bad} is outside the model's ${model.numClasses} classes`,
    );
  }
  if (classes.length < 3) {
    throw new ParryError(
      'BAD_OPTION',
      `neural cleanse: the anomaly index needs at least 3 classes, got ${classes.length}`,
    );
  }
  const x = tf.tensor4d(clean.x, clean.shape as [number, number, number, number]);
  const rng = new Rng(c.seed);
  const triggers: ReversedTrigger[] = [];
  try {
    classes.forEach((t, k) => {
      triggers.push(reverseTrigger(model, x, t, c, rng.fork()));
      onProgress?.(k + 1, classes.length);
    });
  } finally {
    x.dispose();
  }
  const { median, mad, indices } = anomalyIndices(triggers.map((t) => t.l1));
  const rows = triggers.map((t, k) => ({
    class: t.target,
    l1: t.l1,
    anomalyIndex: indices[k],
    attackSuccess: t.attackSuccess,
    flagged: t.l1 < median && indices[k] > c.anomalyThreshold,
  }));
  return {
    triggers,
    classes: rows,
    median,
    mad,
    flagged: rows.filter((r) => r.flagged).map((r) => r.class),
  };
}

export const unlearnSchema = z
  .strictObject({
    /** Share of the clean examples that carry a reversed trigger (true labels kept). */
    fraction: z.number().gt(0).max(1).default(0.2),
    epochs: z.number().int().min(1).default(1),
    batchSize: z.number().int().min(1).default(32),
    lr: z.number().positive().default(1e-3),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .describe('unlearning');

/**
 * The clean set with `fraction` of its examples (seeded) stamped with the triggers `triggers`
 * (taken in turn), labels unchanged: the unlearning set.
 */
export function unlearningSet(
  clean: Dataset,
  triggers: readonly ReversedTrigger[],
  fraction: number,
  seed: number,
): { data: Dataset; stamped: number[] } {
  const n = clean.shape[0];
  const per = exampleSize(clean);
  const [, h, w, ch] = clean.shape;
  const rng = new Rng(seed);
  const stamped = Array.from(rng.permutation(n).subarray(0, Math.round(fraction * n))).sort(
    (p, q) => p - q,
  );
  const x = Float32Array.from(clean.x);
  stamped.forEach((i, k) => {
    const t = triggers[k % triggers.length];
    for (let p = 0; p < h * w; p++) {
      const m = t.mask[p];
      for (let q = 0; q < ch; q++) {
        const o = i * per + p * ch + q;
        x[o] = (1 - m) * x[o] + m * t.pattern[p * ch + q];
      }
    }
  });
  return { data: { ...clean, x, name: `${clean.name} with reversed triggers` }, stamped };
}

/**
 * Neural Cleanse's mitigation: fine-tunes the LayersModel `lm` in place on the unlearning set made
 * from `clean` and `triggers`. Returns the stamped indices.
 */
export async function unlearn(
  lm: tfl.LayersModel,
  clean: Dataset,
  triggers: readonly ReversedTrigger[],
  config: z.input<typeof unlearnSchema> = {},
  ctx: { pool?: WorkerPool; onProgress?: (fraction: number) => void } = {},
): Promise<number[]> {
  const c = parseWith('unlearning', unlearnSchema, config);
  if (triggers.length === 0) {
    throw new ParryError('BAD_INPUT', 'unlearning: no reversed trigger to unlearn');
  }
  const { data, stamped } = unlearningSet(clean, triggers, c.fraction, c.seed);
  await trainModel(
    lm,
    data,
    { epochs: c.epochs, batchSize: c.batchSize, lr: c.lr, seed: c.seed },
    {
      pool: ctx.pool,
      onBatch: (p) => ctx.onProgress?.((p.epoch - 1 + p.batch / p.numBatches) / c.epochs),
    },
  );
  return stamped;
}
