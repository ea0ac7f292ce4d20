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
 */
import * as tf from '@tensorflow/tfjs-core';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createJointAttack } from '../attacks/adaptive/joint.js';
import { NORMS, type Norm } from '../attacks/evasion/projection.js';
import {
  type AttackEntry,
  type AttackParams,
  attackNames,
  findAttack,
} from '../attacks/registry.js';
import { type Dataset, loadDataset, sliceDataset, takeFirst } from '../data/index.js';
import {
  createDetector,
  DETECTORS,
  type Detector,
  type DetectorName,
  detectionAccuracy,
  rateAbove,
  rocAuc,
} from '../defenses/detection/index.js';
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
  detector: DetectorName;
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
    .addOption(
      new Option(
        '--detector <name>',
        DETECTORS.map((d) => `${d.name}: ${d.description}`).join('; '),
      )
        .choices(DETECTORS.map((d) => d.name))
        .makeOptionMandatory(),
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
  const detector = createDetector(opts.detector, opts.seed);
  const supervised = DETECTORS.find((d) => d.name === opts.detector)!.supervised;
  log(`detect: fitting ${opts.detector} on ${train.shape[0]} training examples`);
  const trainX = tf.tensor(train.x, train.shape);
  const trainY = tf.tensor1d(train.labels, 'int32');
  const advTrain = supervised
    ? await craftTrainAdversarial(model, train, attacks, paramsFor, opts)
    : undefined;
  await detector.fit(model, trainX, trainY, advTrain);
  tf.dispose([trainX, trainY, ...(advTrain ? [advTrain] : [])]);
  const calX = tf.tensor(calSet.x, calSet.shape);
  const threshold = detector.calibrate(calX, opts.fpr);
  calX.dispose();
  const x = tf.tensor(evalSet.x, evalSet.shape);
  const cleanScores = detector.score(x);
  const cleanPred = await predictions(model, x);
  const results: Record<string, unknown> = {};
  for (const attack of attacks) {
    log(`detect: ${attack.name} on ${evalSet.shape[0]} test examples`);
    const xAdv = await runInBatches(evalSet, opts.batchSize, (bx, by) =>
      attack.run(model, bx, by, paramsFor(attack, opts.seed), {}).then((r) => r.xAdv),
    );
    results[attack.name] = await summarize(model, detector, evalSet, cleanScores, cleanPred, xAdv);
    xAdv.dispose();
  }
  let joint: Record<string, unknown> | undefined;
  if (opts.joint) {
    log(`detect: joint adaptive attack (${opts.detector} + classifier)`);
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
  x.dispose();
  detector.dispose();
  model.dispose();
  const result = {
    command: 'detect',
    detector: opts.detector,
    model: opts.model,
    dataset: evalSet.name,
    n: evalSet.shape[0],
    fit_n: train.shape[0],
    calibration_n: calSet.shape[0],
    fpr: opts.fpr,
    threshold,
    eps: opts.eps,
    norm: opts.norm,
    seed: opts.seed,
    backend,
    clean_accuracy: cleanPred.filter((p, i) => p === evalSet.labels[i]).length / evalSet.shape[0],
    clean_fpr: rateAbove(cleanScores, threshold),
    attacks: results,
    ...(joint ? { joint } : {}),
    seconds: round((performance.now() - started) / 1000, 3),
  };
  emit(result, opts, () =>
    [
      `${opts.detector} detector on ${evalSet.name}, ${evalSet.shape[0]} examples, threshold ${round(threshold)} at FPR ${opts.fpr} (held-out FPR ${round(result.clean_fpr)})`,
      ...Object.entries({ ...results, ...(joint ? { joint } : {}) }).map(([name, r]) => {
        const s = r as Record<string, number>;
        return `${name}: AUC ${round(s.auc)}, TPR ${round(s.tpr)}, attack success ${round(s.success_rate)}, robust accuracy ${round(s.robust_accuracy)} (with detector ${round(s.robust_accuracy_with_detector)})`;
      }),
    ].join('\n'),
  );
}

/** Adversarial training examples for supervised detectors: attack k crafts chunk k of train. */
async function craftTrainAdversarial(
  model: TfjsClassifier,
  train: Dataset,
  attacks: AttackEntry[],
  paramsFor: (a: AttackEntry, seed: number) => AttackParams,
  opts: DetectOptions,
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
    parts.push(
      await runInBatches(chunk, opts.batchSize, (bx, by) =>
        attacks[k].run(model, bx, by, paramsFor(attacks[k], opts.seed + 1), {}).then((r) => r.xAdv),
      ),
    );
  }
  const out = tf.concat(parts);
  tf.dispose(parts);
  return out;
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
