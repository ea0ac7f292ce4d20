/**
 * `parry detect`: fits a detector on training examples (plus adversarial ones crafted on the
 * train split for supervised detectors), calibrates its threshold at --fpr on held-out clean test
 * examples, then reports for each attack the ROC AUC and the TPR at that threshold on other test
 * examples, and the same under the joint adaptive attack (PGD on classifier margin + detector
 * score). Robust accuracy with the detector counts a rejected adversarial example as defended.
 *
 * Data: train examples [0, --fit-n) fit the detector; test examples [0, n) are evaluated and
 * [n, 2n) calibrate the threshold. Each attack runs in its own norm when it does not support
 * --norm (cw is L2 only, minimum-norm).
 *
 * `--detector` takes a list (or `all`): the attacks' examples, which do not depend on the
 * detector, are crafted once and scored by every detector; the joint attack runs per detector.
 * With one detector the JSON is that detector's report; with several it lists one per detector.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createJointAttack } from '../adaptive/joint.js';
import { NORMS, type Norm } from '../attacks/evasion/projection.js';
import {
  type AttackEntry,
  type AttackParams,
  attackNames,
  findAttack,
} from '../attacks/registry.js';
import { type Dataset, exampleSize, loadDataset, sliceDataset, takeFirst } from '../data/index.js';
import {
  createDetector,
  DETECTORS,
  type Detector,
  type DetectorName,
  detectionAccuracy,
  rateAbove,
  rocAuc,
} from '../defenses/detection/index.js';
import { chooseWorkers, WorkerPool } from '../engine/pool.js';
import { type AttackBatchInput, attackBatch, attackBatchTask } from '../evaluate/robustness.js';
import { loadClassifier, type TfjsClassifier } from '../models/index.js';
import {
  badOption,
  type CommonOptions,
  DATASET_HELP,
  emit,
  log,
  parseNonNegativeNumber,
  parsePositiveInt,
  round,
  setUpBackend,
  withCommonOptions,
} from './common.js';

interface DetectOptions extends CommonOptions {
  model: string;
  dataset: string;
  detector: string;
  attacks: string;
  fpr: number;
  eps: number;
  norm: Norm;
  steps?: number;
  jointSteps: number;
  n: number;
  fitN: number;
  batchSize: number;
  joint: boolean;
}

export function detectCommand(): Command {
  const cmd = new Command('detect')
    .description('fit an adversarial-example detector and report ROC AUC and TPR at a fixed FPR')
    .requiredOption('--model <dir>', 'TF.js LayersModel directory (Sequential)')
    .option('--dataset <name>', DATASET_HELP, 'fashion-mnist-subset')
    .requiredOption(
      '--detector <list>',
      `comma-separated detectors, or all: ${DETECTORS.map((d) => `${d.name}: ${d.description}`).join('; ')}`,
    )
    .option('--attacks <list>', `comma-separated attacks (${attackNames().join(', ')})`, 'fgsm,pgd')
    .option('--fpr <a>', 'false-positive rate the threshold is calibrated at', parseFraction, 0.05)
    .option('--eps <e>', 'perturbation budget', parseNonNegativeNumber, 0.1)
    .addOption(new Option('--norm <norm>', 'threat model').choices([...NORMS]).default('linf'))
    .option('--steps <k>', 'iterations of iterative attacks', parsePositiveInt)
    .option(
      '--joint-steps <k>',
      'iterations of the joint adaptive attack per λ',
      parsePositiveInt,
      20,
    )
    .option('--no-joint', 'skip the joint adaptive attack')
    .option('--n <n>', 'test examples evaluated (the next n calibrate)', parsePositiveInt, 200)
    .option('--fit-n <k>', 'training examples the detector is fitted on', parsePositiveInt, 1000)
    .option('--batch-size <b>', 'examples per attack batch', parsePositiveInt, 128);
  return withCommonOptions(cmd).action((opts: DetectOptions) => runDetect(opts));
}

function parseFraction(value: string): number {
  const v = parseNonNegativeNumber(value);
  if (v > 1) throw new InvalidArgumentError(`must be in [0, 1], got '${value}'`);
  return v;
}

function parseDetectors(list: string): DetectorName[] {
  const known = DETECTORS.map((d) => d.name as DetectorName);
  if (list.trim() === 'all') return known;
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw badOption('--detector: give at least one detector');
  for (const name of names) {
    if (!known.includes(name as DetectorName))
      throw badOption(
        `--detector: unknown detector '${name}' (choose from ${known.join(', ')}, or all)`,
      );
  }
  if (new Set(names).size !== names.length)
    throw badOption(`--detector: a detector is listed twice in '${list}'`);
  return names as DetectorName[];
}

function parseAttacks(list: string): AttackEntry[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw badOption('--attacks: give at least one attack');
  return names.map((name) => {
    const a = findAttack(name);
    if (a === undefined) {
      throw badOption(
        `--attacks: unknown attack '${name}' (choose from ${attackNames().join(', ')})`,
      );
    }
    return a;
  });
}

async function runDetect(opts: DetectOptions): Promise<void> {
  const started = performance.now();
  const names = parseDetectors(opts.detector);
  const attacks = parseAttacks(opts.attacks);
  const backend = await setUpBackend(opts);
  const model = await loadClassifier(opts.model);
  const train = takeFirst(loadDataset(opts.dataset, 'train', { seed: opts.seed }), opts.fitN);
  const testAll = takeFirst(loadDataset(opts.dataset, 'test', { seed: opts.seed }), 2 * opts.n);
  if (testAll.shape[0] < opts.n + 10) {
    throw badOption(
      `--n ${opts.n}: the test split has ${testAll.shape[0]} examples, need n + 10 for calibration`,
    );
  }
  const evalSet = sliceDataset(testAll, 0, opts.n);
  const calSet = sliceDataset(testAll, opts.n);
  model.checkInput(train.shape);
  const paramsFor = (attack: AttackEntry, seed: number): AttackParams => ({
    norm: attack.norms.includes(opts.norm) ? opts.norm : attack.norms[0],
    eps: opts.eps,
    steps: opts.steps,
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
      if (names.some((n) => DETECTORS.find((d) => d.name === n)!.supervised))
        advTrain = await craftTrainAdversarial(
          train,
          attacks,
          (a) => paramsFor(a, opts.seed + 1),
          craft,
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
    command: 'detect',
    model: opts.model,
    dataset: evalSet.name,
    n: evalSet.shape[0],
    fit_n: train.shape[0],
    calibration_n: calSet.shape[0],
    fpr: opts.fpr,
    eps: opts.eps,
    norm: opts.norm,
    seed: opts.seed,
    backend,
    clean_accuracy: cleanPred.filter((p, i) => p === evalSet.labels[i]).length / evalSet.shape[0],
  };
  const seconds = round((performance.now() - started) / 1000, 3);
  const result =
    reports.length === 1
      ? { ...shared, ...reports[0], seconds }
      : { ...shared, detectors: reports, seconds };
  emit(result, opts, () =>
    reports
      .flatMap((rep) => {
        const r = rep as {
          detector: string;
          threshold: number;
          clean_fpr: number;
          attacks: object;
          joint?: object;
        };
        return [
          `${r.detector} detector on ${evalSet.name}, ${evalSet.shape[0]} examples, threshold ${round(r.threshold)} at FPR ${opts.fpr} (held-out FPR ${round(r.clean_fpr)})`,
          ...Object.entries({ ...r.attacks, ...(r.joint ? { joint: r.joint } : {}) }).map(
            ([name, v]) => {
              const s = v as Record<string, number>;
              return `  ${name}: AUC ${round(s.auc)}, TPR ${round(s.tpr)}, attack success ${round(s.success_rate)}, robust accuracy ${round(s.robust_accuracy)} (with detector ${round(s.robust_accuracy_with_detector)})`;
            },
          ),
        ];
      })
      .join('\n'),
  );
}

/** Fits, calibrates and scores one detector on the shared data and crafted examples. */
async function evaluateDetector(
  name: DetectorName,
  opts: DetectOptions,
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
  const detector = createDetector(name, opts.seed);
  try {
    const supervised = DETECTORS.find((d) => d.name === name)!.supervised;
    log(`detect: fitting ${name} on ${t.trainX.shape[0]} training examples`);
    await detector.fit(model, t.trainX, t.trainY, supervised ? t.advTrain : undefined);
    const threshold = detector.calibrate(t.calX, opts.fpr);
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
    robust_accuracy_with_detector: round(withDetector.robust_accuracy),
    clean_accuracy_with_detector: round(withDetector.clean_accuracy),
  };
}
