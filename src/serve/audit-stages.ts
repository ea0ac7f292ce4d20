/**
 * The endpoint audit's stages after the clean pass (see endpoint-audit.ts): each spends at most its
 * share of the budget and returns its record, or none (skipped) and a note saying why.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hopSkipJump } from '../attacks/evasion/hop-skip-jump.js';
import { square } from '../attacks/evasion/square.js';
import { augmentationSignal, noiseSignal } from '../attacks/privacy/label-only.js';
import { membershipMetrics } from '../attacks/privacy/membership/roc.js';
import { queriesOf } from '../attacks/privacy/reference-models.js';
import { runStealing } from '../attacks/privacy/stealing/registry.js';
import { type Dataset, exampleSize, takeFirst } from '../data/dataset.js';
import { cellOf } from '../evaluate/cells.js';
import type { AuditConfig, AuditData, AuditTarget, StageRecord } from './audit-config.js';

/** What a stage returns: its record's numbers, or none (skipped) and the reason. */
export type StageOutcome = Pick<
  StageRecord,
  'metrics' | 'note' | 'run' | 'labelOnly' | 'memberAccuracy' | 'stealing'
>;

/** Rows per request the stages ask for (the endpoint splits them by its own maximum batch). */
const BATCH = 64;

/**
 * The endpoint's label for each of `count` rows of `rows` (`[count, ...inputShape]`); -1 where it
 * abstained, which an `HttpQueryClassifier` answers as the uniform row. `confidence`, when
 * given, receives each answer's top score (1 for a label-only answer).
 */
export async function labelsOfRows(
  target: AuditTarget,
  rows: Float32Array,
  count: number,
  confidence?: Float32Array,
): Promise<Int32Array> {
  const per = rows.length / Math.max(count, 1);
  const k = target.numClasses;
  const out = new Int32Array(count);
  for (let s = 0; s < count; s += BATCH) {
    const m = Math.min(BATCH, count - s);
    const x = tf.tensor(rows.subarray(s * per, (s + m) * per), [m, ...target.inputShape]);
    const p = await target.predict(x);
    const v = await p.data();
    tf.dispose([x, p]);
    for (let i = 0; i < m; i++) {
      let best = 0;
      let uniform = true;
      for (let c = 1; c < k; c++) {
        if (v[i * k + c] !== v[i * k]) uniform = false;
        if (v[i * k + c] > v[i * k + best]) best = c;
      }
      out[s + i] = uniform ? -1 : best;
      if (confidence) confidence[s + i] = v[i * k + best];
    }
  }
  return out;
}

/** The examples at `indices` as tensors (caller disposes). */
function pick(data: Dataset, indices: number[]) {
  const per = exampleSize(data);
  const x = new Float32Array(indices.length * per);
  indices.forEach((j, i) => {
    x.set(data.x.subarray(j * per, (j + 1) * per), i * per);
  });
  return {
    x: tf.tensor(x, [indices.length, ...data.shape.slice(1)]),
    y: tf.tensor1d(
      Int32Array.from(indices, (j) => data.labels[j]),
      'int32',
    ),
  };
}

/**
 * Square (score-based) or HopSkipJump (decision-based, capped to the eps ball) on the examples
 * the endpoint classifies correctly (`clean`: its predictions on `test`). HopSkipJump keeps one
 * query per example in reserve to read back the label of each point it found (answered from the
 * endpoint's cache when it can).
 */
export async function evasionStage(
  attack: 'square' | 'hsj',
  share: number,
  target: AuditTarget,
  test: Dataset,
  c: AuditConfig,
  clean: readonly number[],
): Promise<StageOutcome> {
  const started = performance.now();
  const before = target.queries;
  const correct = clean.flatMap((p, i) => (p === test.labels[i] ? [i] : []));
  if (attack === 'square' && target.outputs === 'labels') {
    return { note: 'the endpoint answers labels only: Square needs scores' };
  }
  if (correct.length === 0) return { note: 'no example is classified correctly' };
  const reserve = attack === 'hsj' ? correct.length : 0;
  const perExample = Math.floor((share - reserve) / correct.length);
  if (perExample < 2) return { note: `budget too small: ${perExample} queries per example` };
  const squareParams = { eps: c.eps, norm: c.norm, maxQueries: perExample, seed: c.seed };
  const hsjParams = {
    norm: c.norm,
    eps: c.eps,
    maxQueries: perExample,
    steps: 20,
    initEvals: Math.min(100, Math.max(1, Math.floor(perExample / 10))),
    initTrials: Math.min(100, Math.max(1, Math.floor(perExample / 10))),
    batchSize: BATCH,
    seed: c.seed,
  };
  const params: Record<string, unknown> = attack === 'square' ? squareParams : hsjParams;
  const { x, y } = pick(test, correct);
  // Per attacked example: its label after the attack (-1: abstained) and the perturbation size.
  let found: Int32Array;
  let sizes: Float64Array;
  try {
    if (attack === 'square') {
      const r = await square(target, x, y, squareParams);
      const success = await r.success.data();
      const predictions = await r.predictions.data();
      sizes = Float64Array.from(await r.perturbationNorms.data());
      // Square stops an example at margin < 0: misclassified by the scores it saw.
      found = Int32Array.from(correct, (j, i) => (success[i] ? predictions[i] : clean[j]));
      tf.dispose([r.xAdv, r.predictions, r.success, r.perturbationNorms]);
    } else {
      const r = await hopSkipJump(target, x, y, hsjParams);
      const xAdv = (await r.xAdv.data()) as Float32Array;
      r.xAdv.dispose();
      sizes = Float64Array.from(r.perturbationNorms);
      const per = exampleSize(test);
      const hits = correct.flatMap((_, i) => (r.success[i] ? [i] : []));
      const rows = new Float32Array(hits.length * per);
      hits.forEach((i, h) => {
        rows.set(xAdv.subarray(i * per, (i + 1) * per), h * per);
      });
      const read = await labelsOfRows(target, rows, hits.length);
      found = Int32Array.from(correct, (j) => clean[j]);
      hits.forEach((i, h) => {
        found[i] = read[h];
      });
    }
  } finally {
    tf.dispose([x, y]);
  }
  const adversarial = [...clean];
  const norms = new Array<number>(clean.length).fill(0);
  correct.forEach((j, i) => {
    adversarial[j] = found[i];
    norms[j] = sizes[i];
  });
  const run = {
    clean: [...clean],
    adversarial,
    norms,
    gradientEvaluations: 0,
    queries: target.queries - before,
    seconds: (performance.now() - started) / 1000,
    params,
  };
  const cell = cellOf(run, test.labels, {
    attack,
    kind: attack,
    norm: c.norm,
    eps: c.eps,
    params,
    // HopSkipJump runs capped to the ball: what it calls a success is within eps already.
    minimumNorm: false,
    targeted: false,
  });
  return {
    run,
    metrics: {
      robustAccuracy: cell.robustAccuracy,
      successRate: cell.attackSuccessRate,
      attacked: correct.length,
      maxQueriesPerExample: perExample,
      medianNorm: cell.medianPerturbation,
    },
  };
}

/**
 * A label-only membership signal on the first n training examples (assumed members) and the n
 * test examples (non-members): the noise signal (`membership`) with as many Gaussian copies as
 * the share pays for (at most 20), or the augmentation signal with the 18 flip-shift copies, else
 * the 2 flip copies. The endpoint's accuracy on the assumed members is read first.
 */
export async function membershipStage(
  signal: 'noise' | 'augmentation',
  share: number,
  target: AuditTarget,
  data: AuditData,
  c: AuditConfig,
): Promise<StageOutcome> {
  const started = performance.now();
  const before = target.queries;
  const n = data.test.shape[0];
  const members = takeFirst(data.train, n);
  const m = members.shape[0];
  const candidates = n + m;
  // Per candidate, after m queries for the members' clean labels (no answer cache assumed).
  const each = Math.floor((share - m) / candidates);
  const noise = { sigma: c.sigma, samples: Math.min(20, each), seed: c.seed };
  const augmentation = {
    queries: each >= queriesOf('flip-shift').length ? ('flip-shift' as const) : ('flip' as const),
  };
  const params: Record<string, unknown> = signal === 'noise' ? noise : augmentation;
  const needed = signal === 'noise' ? 1 : queriesOf('flip').length;
  if (each < needed) {
    return {
      note: `budget too small: ${share} queries for ${m} clean labels and ${needed} per candidate of ${candidates}`,
    };
  }
  const labels = await labelsOfRows(target, members.x, m);
  const memberAccuracy = labels.filter((p, i) => p === members.labels[i]).length / m;
  const signalOf = (d: Dataset) =>
    signal === 'noise'
      ? noiseSignal(target, d, noise)
      : augmentationSignal(target, d, augmentation);
  const inSignal = await signalOf(members);
  const outSignal = await signalOf(data.test);
  const metrics = membershipMetrics(
    [...inSignal, ...outSignal],
    [...new Array<number>(m).fill(1), ...new Array<number>(n).fill(0)],
  );
  const queries = target.queries - before;
  const assumption = `assumes the first ${m} examples of '${data.train.name}' are the endpoint's training data; no reference models, so no calibrated threshold`;
  return {
    memberAccuracy,
    labelOnly: {
      attack: `label-only-${signal}`,
      options: { ...params, references: 0 },
      metrics,
      warnings: [assumption],
      seconds: (performance.now() - started) / 1000,
      candidates,
      references: 0,
      queries: queries / candidates,
    },
    metrics: {
      signal,
      ...(signal === 'noise' ? { sigma: c.sigma, samples: noise.samples } : {}),
      ...(signal === 'augmentation' ? { queries: augmentation.queries } : {}),
      memberAccuracy,
      trainMean: mean(inSignal),
      testMean: mean(outSignal),
      auc: metrics.auc,
      tprAt1: metrics.tprAt['0.01'],
    },
    note: assumption,
  };
}

/**
 * Knockoff, Copycat or Jacobian augmentation with the training split as pool (Jacobian draws its
 * seed set from it), the thief scored on the test examples (answered from the clean pass) and on
 * n transfer examples, which the share pays for.
 */
export async function stealingStage(
  method: 'knockoff' | 'copycat' | 'jacobian',
  share: number,
  target: AuditTarget,
  data: AuditData,
  c: AuditConfig,
): Promise<StageOutcome> {
  const n = data.test.shape[0];
  const budget = share - n;
  if (budget < 1) return { note: `budget too small: ${share} queries, scoring alone needs ${n}` };
  const { result, model } = await runStealing(
    method,
    target,
    { pool: data.train, test: data.test },
    { budget, arch: c.thiefArch, epochs: c.thiefEpochs, seed: c.seed },
    { transfer: { eps: c.norm === 'linf' ? c.eps : 0.1, seed: c.seed } },
  );
  model.dispose();
  return {
    stealing: result,
    metrics: {
      budget,
      queriesUsed: result.queriesUsed,
      accuracy: result.accuracy,
      agreement: result.agreement,
      transferRate: result.transferRate,
      victimAccuracy: result.victimAccuracy,
      targets: result.targets,
    },
  };
}

const mean = (v: ArrayLike<number>) =>
  Array.from(v).reduce((a, b) => a + b, 0) / Math.max(1, v.length);
