/**
 * The endpoint audit's stages after the clean pass (see endpoint-audit.ts): each spends at most its
 * share of the budget and returns its metrics, or no metrics and a note saying why it was skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { hopSkipJump } from '../attacks/evasion/hop-skip-jump.js';
import { square } from '../attacks/evasion/square.js';
import { noiseSignal } from '../attacks/privacy/label-only.js';
import { curveAuc, rocCurve } from '../attacks/privacy/membership/roc.js';
import { runStealing } from '../attacks/privacy/stealing/registry.js';
import { type Dataset, exampleSize, takeFirst } from '../data/dataset.js';
import type { AuditConfig, AuditData, AuditTarget, StageRecord } from './audit-config.js';

/** What a stage returns: metrics, or none (skipped) and the reason. */
export interface StageOutcome {
  metrics: StageRecord['metrics'];
  note?: string;
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

export async function evasionStage(
  attack: 'square' | 'hsj',
  share: number,
  target: AuditTarget,
  test: Dataset,
  c: AuditConfig,
  correct: number[],
) {
  const n = test.shape[0];
  if (attack === 'square' && target.outputs === 'labels') {
    return { metrics: undefined, note: 'the endpoint answers labels only: Square needs scores' };
  }
  if (correct.length === 0)
    return { metrics: undefined, note: 'no example is classified correctly' };
  const perExample = Math.floor(share / correct.length);
  if (perExample < 2) {
    return { metrics: undefined, note: `budget too small: ${perExample} queries per example` };
  }
  const { x, y } = pick(test, correct);
  try {
    let broken: boolean[];
    let meanQueries: number;
    let norms: number[];
    if (attack === 'square') {
      const r = await square(target, x, y, {
        eps: c.eps,
        norm: c.norm,
        maxQueries: perExample,
        seed: c.seed,
      });
      broken = Array.from(await r.success.data(), Boolean);
      norms = Array.from(await r.perturbationNorms.data());
      meanQueries = r.queries;
      tf.dispose([r.xAdv, r.predictions, r.success, r.perturbationNorms]);
    } else {
      const r = await hopSkipJump(target, x, y, {
        norm: c.norm,
        eps: c.eps,
        maxQueries: perExample,
        steps: 20,
        initEvals: Math.min(100, Math.max(1, Math.floor(perExample / 10))),
        initTrials: Math.min(100, Math.max(1, Math.floor(perExample / 10))),
        batchSize: 64,
        seed: c.seed,
      });
      broken = r.success;
      norms = Array.from(r.perturbationNorms);
      meanQueries = r.meanQueries;
      r.xAdv.dispose();
    }
    const kept = broken.filter((b) => !b).length;
    const found = norms.filter((_, i) => broken[i]).sort((a, b) => a - b);
    return {
      metrics: {
        robustAccuracy: kept / n,
        successRate: 1 - kept / correct.length,
        attacked: correct.length,
        maxQueriesPerExample: perExample,
        meanQueries,
        medianNorm: found.length > 0 ? found[Math.floor(found.length / 2)] : null,
      },
    };
  } finally {
    tf.dispose([x, y]);
  }
}

export async function membershipStage(
  share: number,
  target: AuditTarget,
  data: AuditData,
  c: AuditConfig,
) {
  const n = data.test.shape[0];
  const members = takeFirst(data.train, n);
  const samples = Math.min(20, Math.floor(share / (n + members.shape[0])));
  if (samples < 1)
    return {
      metrics: undefined,
      note: `budget too small: ${share} queries for ${n + members.shape[0]} examples`,
    };
  const opts = { sigma: c.sigma, samples, seed: c.seed };
  const inSignal = await noiseSignal(target, members, opts);
  const outSignal = await noiseSignal(target, data.test, opts);
  const scores = [...inSignal, ...outSignal];
  const membership = [...Array(inSignal.length).fill(1), ...Array(outSignal.length).fill(0)];
  return {
    metrics: {
      signal: 'noise',
      sigma: c.sigma,
      samples,
      trainMean: mean(inSignal),
      trainStd: std(inSignal),
      testMean: mean(outSignal),
      testStd: std(outSignal),
      auc: curveAuc(rocCurve(scores, membership)),
    },
    note: `assumes '${data.train.name}' is the endpoint's training data (no reference models: raw signals, no calibrated threshold)`,
  };
}

export async function stealingStage(
  method: 'knockoff' | 'copycat',
  share: number,
  target: AuditTarget,
  data: AuditData,
  c: AuditConfig,
) {
  const n = data.test.shape[0];
  // Scoring asks the endpoint about the test examples (answered from the clean pass) and about
  // n transfer examples.
  const budget = share - n;
  if (budget < 1)
    return {
      metrics: undefined,
      note: `budget too small: ${share} queries, scoring alone needs ${n}`,
    };
  const { result, model } = await runStealing(
    method,
    target,
    { pool: data.train, test: data.test },
    { budget, arch: c.thiefArch, epochs: c.thiefEpochs, seed: c.seed },
    { transfer: { eps: c.norm === 'linf' ? c.eps : 0.1, seed: c.seed } },
  );
  model.dispose();
  return {
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
function std(v: ArrayLike<number>): number {
  const m = mean(v);
  return Math.sqrt(Array.from(v).reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, v.length));
}
