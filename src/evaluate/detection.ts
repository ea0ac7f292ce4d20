/**
 * `parry detect`'s evaluation: fits and calibrates each detector by the detector protocol
 * (src/defenses/detection/protocol.ts: training examples [0, fitN) fit it, the next
 * calibrationN set its threshold at `fpr`; supervised detectors also learn from examples of the
 * attacks crafted on the fitting slice, attack k on the k-th chunk), then reports for each attack
 * the ROC AUC and the TPR at that threshold on test examples [0, n), and the same under the joint
 * adaptive attack (PGD on the classifier margin + the detector's score). Robust accuracy with the
 * detector counts a rejected adversarial example as defended.
 *
 * Each attack runs in its own norm when it does not support `norm` (cw is L2 only, minimum-norm).
 * The attacks' examples, which do not depend on the detector, are crafted once and scored by every
 * detector; the joint attack runs per detector.
 */

import * as tf from '@tensorflow/tfjs-core';
import { createJointAttack } from '../adaptive/joint.js';
import type { AttackEntry, AttackParams } from '../attacks/registry.js';
import { type Dataset, exampleSize, loadDataset, sliceDataset, takeFirst } from '../data/index.js';
import {
  type Detector,
  type DetectorName,
  detectionAccuracy,
  rateAbove,
  rocAuc,
} from '../defenses/detection/index.js';
import {
  detectorSplit,
  fitCalibratedDetector,
  isSupervised,
} from '../defenses/detection/protocol.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { checkDataFits } from '../models/data-fit.js';
import { loadClassifier, type TfjsClassifier } from '../models/index.js';
import type { Norm } from '../objectives/threat-model.js';
import { type AttackBatchInput, attackBatch, attackBatchTask } from './robustness.js';

export interface DetectOptions {
  model: string;
  dataset: string;
  detectors: DetectorName[];
  attacks: AttackEntry[];
  fpr: number;
  eps: number;
  norm: Norm;
  steps?: number;
  jointSteps: number;
  n: number;
  /** Training examples that fit the detector, and the next ones that calibrate it. */
  fitN: number;
  calibrationN: number;
  batchSize: number;
  joint: boolean;
  seed: number;
  workers?: number;
  /**
   * Hears each detector once fitted and calibrated, before it is scored (e.g. to save it), with
   * the model and the calibration examples; the detector is freed after the evaluation.
   */
  onFitted?: (
    name: DetectorName,
    detector: Detector,
    model: TfjsClassifier,
    calibration: tf.Tensor,
  ) => Promise<void>;
}

const round = (x: number, digits = 4) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * Fits each detector, calibrates it, and scores it against every attack and the joint adaptive
 * attack (see the module comment for which examples play which part). Returns the report.
 */
export async function evaluateDetectors(
  opts: DetectOptions,
  onLog: (message: string) => void = () => {},
): Promise<Record<string, unknown>> {
  const log = onLog;
  const started = performance.now();
  const names = opts.detectors;
  const attacks = opts.attacks;
  const model = await loadClassifier(opts.model);
  const trainAll = loadDataset(opts.dataset, 'train', { seed: opts.seed });
  const split = { fitExamples: opts.fitN, calibrationExamples: opts.calibrationN };
  const { fit: train, calibration: calSet } = detectorSplit(trainAll, split);
  const evalSet = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), opts.n);
  model.checkInput(train.shape);
  checkDataFits(model, train);
  // Each attack gets what it reads: eps unless it is minimum-norm, steps when it iterates.
  const paramsFor = (attack: AttackEntry, seed: number): AttackParams => ({
    norm: attack.norms.includes(opts.norm) ? opts.norm : attack.norms[0],
    ...(attack.minimumNorm ? {} : { eps: opts.eps }),
    ...(opts.steps !== undefined && 'steps' in attack.schema.shape ? { steps: opts.steps } : {}),
    targeted: false,
    seed,
  });
  const trainX = tf.tensor(train.x, train.shape);
  const trainY = tf.tensor1d(train.labels, 'int32');
  const calX = tf.tensor(calSet.x, calSet.shape);
  const x = tf.tensor(evalSet.x, evalSet.shape);
  const cleanPred = await predictions(model, x);
  let advTrain: tf.Tensor | undefined;
  const crafted: { name: string; xAdv: tf.Tensor }[] = [];
  const reports: Record<string, unknown>[] = [];
  const { craft, close } = crafter(model, opts);
  try {
    try {
      if (names.some(isSupervised))
        advTrain = await craftTrainAdversarial(
          train,
          attacks,
          (a) => paramsFor(a, opts.seed + 1),
          craft,
          log,
        );
      for (const attack of attacks) {
        log(`detect: ${attack.name} on ${evalSet.shape[0]} test examples`);
        const params = paramsFor(attack, opts.seed);
        crafted.push({ name: attack.name, xAdv: await craft(evalSet, attack, params) });
      }
    } finally {
      await close();
    }
    for (const name of names) {
      reports.push(
        await evaluateDetector(
          name,
          opts,
          log,
          model,
          { trainX, trainY, advTrain, calX, x },
          evalSet,
          cleanPred,
          crafted,
        ),
      );
    }
  } finally {
    tf.dispose([
      trainX,
      trainY,
      calX,
      x,
      ...(advTrain ? [advTrain] : []),
      ...crafted.map((c) => c.xAdv),
    ]);
    model.dispose();
  }
  const shared = {
    dataset: evalSet.name,
    n: evalSet.shape[0],
    fit_n: train.shape[0],
    calibration_n: calSet.shape[0],
    fpr: opts.fpr,
    eps: opts.eps,
    norm: opts.norm,
    seed: opts.seed,
    clean_accuracy: cleanPred.filter((p, i) => p === evalSet.labels[i]).length / evalSet.shape[0],
  };
  const seconds = round((performance.now() - started) / 1000, 3);
  return reports.length === 1
    ? { ...shared, ...reports[0], seconds }
    : { ...shared, detectors: reports, seconds };
}

/** Fits, calibrates and scores one detector on the shared data and crafted examples. */
async function evaluateDetector(
  name: DetectorName,
  opts: DetectOptions,
  log: (message: string) => void,
  model: TfjsClassifier,
  t: {
    trainX: tf.Tensor;
    trainY: tf.Tensor1D;
    advTrain?: tf.Tensor;
    calX: tf.Tensor;
    x: tf.Tensor;
  },
  evalSet: Dataset,
  cleanPred: number[],
  crafted: { name: string; xAdv: tf.Tensor }[],
): Promise<Record<string, unknown>> {
  const started = performance.now();
  log(`detect: fitting ${name} on ${t.trainX.shape[0]} training examples`);
  const fitData = { x: t.trainX, labels: t.trainY, adversarial: t.advTrain, calibration: t.calX };
  const detector = await fitCalibratedDetector(name, model, fitData, opts.fpr, opts.seed);
  try {
    await opts.onFitted?.(name, detector, model, t.calX);
    const threshold = detector.threshold;
    const cleanScores = detector.score(t.x);
    const results: Record<string, unknown> = {};
    for (const c of crafted) {
      results[c.name] = await summarize(model, detector, evalSet, cleanScores, cleanPred, c.xAdv);
    }
    let joint: Record<string, unknown> | undefined;
    if (opts.joint) {
      log(`detect: joint adaptive attack (${name} + classifier)`);
      const jointNorm = opts.norm === 'l2' ? 'l2' : 'linf';
      const run = createJointAttack({
        eps: opts.eps,
        norm: jointNorm,
        steps: opts.jointSteps,
        seed: opts.seed,
      });
      const xAdv = await runInBatches(evalSet, opts.batchSize, (bx, by) =>
        run(model, detector, bx, by).then((r) => r.xAdv),
      );
      joint = {
        norm: jointNorm,
        ...(await summarize(model, detector, evalSet, cleanScores, cleanPred, xAdv)),
      };
      xAdv.dispose();
    }
    return {
      detector: name,
      threshold,
      clean_fpr: rateAbove(cleanScores, threshold),
      attacks: results,
      ...(joint ? { joint } : {}),
      detector_seconds: round((performance.now() - started) / 1000, 3),
    };
  } finally {
    detector.dispose();
  }
}

/** Adversarial training examples for supervised detectors: attack k crafts chunk k of train. */
async function craftTrainAdversarial(
  train: Dataset,
  attacks: AttackEntry[],
  paramsOf: (a: AttackEntry) => AttackParams,
  craft: Craft,
  log: (message: string) => void,
): Promise<tf.Tensor> {
  const n = train.shape[0];
  const parts: tf.Tensor[] = [];
  for (let k = 0; k < attacks.length; k++) {
    const chunk = sliceDataset(
      train,
      Math.floor((k * n) / attacks.length),
      Math.floor(((k + 1) * n) / attacks.length),
    );
    if (chunk.shape[0] === 0) continue;
    log(`detect: crafting ${chunk.shape[0]} ${attacks[k].name} training examples`);
    parts.push(await craft(chunk, attacks[k], paramsOf(attacks[k])));
  }
  const out = tf.concat(parts);
  tf.dispose(parts);
  return out;
}

type Craft = (data: Dataset, attack: AttackEntry, params: AttackParams) => Promise<tf.Tensor>;

/**
 * `craft(data, attack, params)`: `attack`'s adversarial examples for `data`, batch by batch, every
 * batch with the same `params` (seed included). Batches go to one worker per core (`--workers`),
 * each loading the model from `--model`; a single batch, or `--workers 1`, runs in this thread.
 * Both give the same values. The pool starts on first use and serves every later call; `close`
 * shuts it down.
 */
function crafter(
  model: TfjsClassifier,
  opts: DetectOptions,
): { craft: Craft; close: () => Promise<void> } {
  const workers = chooseWorkers(opts.workers);
  let pool: WorkerPool | undefined;
  const craft: Craft = async (data, attack, params) => {
    const n = data.shape[0];
    const per = exampleSize(data);
    const batches: AttackBatchInput[] = [];
    for (let start = 0; start < n; start += opts.batchSize) {
      const end = Math.min(n, start + opts.batchSize);
      batches.push({
        x: data.x.slice(start * per, end * per),
        shape: [end - start, ...data.shape.slice(1)],
        labels: Int32Array.from(data.labels.subarray(start, end)),
        attack: attack.name,
        params,
        keep: end - start,
      });
    }
    let outputs: { xAdv: Float32Array }[];
    if (workers > 1 && batches.length > 1) {
      pool ??= new WorkerPool({ workers, backend: tf.getBackend() });
      outputs = await pool.map(
        attackBatchTask(),
        batches.map((b) => ({ ...b, modelDir: opts.model })),
        { transfer: (input) => [input.x.buffer as ArrayBuffer] },
      );
    } else {
      outputs = [];
      for (const b of batches) outputs.push(await attackBatch(model, b, undefined, attack));
    }
    const xAdv = new Float32Array(n * per);
    let offset = 0;
    for (const out of outputs) {
      xAdv.set(out.xAdv, offset);
      offset += out.xAdv.length;
    }
    return tf.tensor(xAdv, data.shape);
  };
  return { craft, close: async () => pool?.close() };
}

/** Applies `fn` batch by batch and concatenates the results. */
async function runInBatches(
  data: Dataset,
  batchSize: number,
  fn: (x: tf.Tensor, labels: tf.Tensor1D) => Promise<tf.Tensor>,
): Promise<tf.Tensor> {
  const n = data.shape[0];
  const parts: tf.Tensor[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const b = sliceDataset(data, start, Math.min(n, start + batchSize));
    const bx = tf.tensor(b.x, b.shape);
    const by = tf.tensor1d(b.labels, 'int32');
    try {
      parts.push(await fn(bx, by));
    } finally {
      tf.dispose([bx, by]);
    }
  }
  const out = tf.concat(parts);
  tf.dispose(parts);
  return out;
}

async function predictions(model: TfjsClassifier, x: tf.Tensor): Promise<number[]> {
  const p = tf.tidy(() => tf.argMax(model.logits(x), 1));
  const out = Array.from(await p.data());
  p.dispose();
  return out;
}

/** AUC / TPR of one attack's examples, over all and over the successful ones, and accuracies. */
async function summarize(
  model: TfjsClassifier,
  detector: Detector,
  data: Dataset,
  cleanScores: Float32Array,
  cleanPred: number[],
  xAdv: tf.Tensor,
) {
  const advScores = detector.score(xAdv);
  const advPred = await predictions(model, xAdv);
  const labels = data.labels;
  const fooled = advPred.map((p, i) => p !== labels[i] && cleanPred[i] === labels[i]);
  const fooledScores = advScores.filter((_, i) => fooled[i]);
  const reject = model.numClasses;
  const withDetector = detectionAccuracy(
    labels,
    cleanPred.map((p, i) => (cleanScores[i] > detector.threshold ? reject : p)),
    advPred.map((p, i) => (advScores[i] > detector.threshold ? reject : p)),
    reject,
  );
  const auc = rocAuc(cleanScores, advScores);
  const aucSuccessful = rocAuc(cleanScores, fooledScores);
  return {
    auc: round(auc),
    tpr: round(rateAbove(advScores, detector.threshold)),
    auc_successful: Number.isNaN(aucSuccessful) ? null : round(aucSuccessful),
    tpr_successful:
      fooledScores.length === 0 ? null : round(rateAbove(fooledScores, detector.threshold)),
    success_rate: round(fooled.filter(Boolean).length / labels.length),
    robust_accuracy: round(advPred.filter((p, i) => p === labels[i]).length / labels.length),
    robust_accuracy_with_detector: round(withDetector.robustAccuracy),
    clean_accuracy_with_detector: round(withDetector.cleanAccuracy),
  };
}
