import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  apgd,
  apgdCheckpoints,
  dlrLoss,
  dlrTargetedLoss,
  perturbationNorms,
  pgd,
} from '../../src/attacks/evasion/index.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { syntheticDataset } from '../../src/data/index.js';
import { ParryError } from '../../src/errors.js';
import type { Classifier } from '../../src/models/classifier.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';
import { trainModel } from '../../src/train/loop.js';
import { cnnModel, toArray, twoClassModel, values } from './helpers.js';

/** Logits written by hand, with ties and a misclassified row. */
const LOGITS = [
  [3, 1, 2, -1, 0.5],
  [0, 4, 4.5, 1, 2],
  [1, 1, 1, 2, 0],
  [-2, 5, 0, 0, 1],
];
const LABELS = [0, 1, 2, 3];
const TARGETS = [2, 2, 3, 1];

/** Independent plain-JS DLR (Croce & Hein 2020, eqs. 5 and 7). */
function dlrJs(z: number[], y: number, t?: number): number {
  const s = [...z].sort((a, b) => b - a);
  if (t === undefined) {
    const other = Math.max(...z.filter((_, i) => i !== y));
    return -(z[y] - other) / (s[0] - s[2] + 1e-12);
  }
  return -(z[y] - z[t]) / (s[0] - (s[2] + s[3]) / 2 + 1e-12);
}

describe('DLR loss', () => {
  const logits = tf.tensor2d(LOGITS);
  const labels = tf.tensor1d(LABELS, 'int32');
  const targets = tf.tensor1d(TARGETS, 'int32');

  it('matches an independent JS computation, untargeted and targeted', () => {
    const untargeted = toArray(dlrLoss(logits, labels));
    const targeted = toArray(dlrTargetedLoss(logits, labels, targets));
    LOGITS.forEach((z, i) => {
      expect(untargeted[i]).toBeCloseTo(dlrJs(z, LABELS[i]), 5);
      expect(targeted[i]).toBeCloseTo(dlrJs(z, LABELS[i], TARGETS[i]), 5);
    });
  });

  it('is invariant to shifting and positive scaling of the logits', () => {
    const moved = tf.add(tf.mul(logits, 3.7), -5.25) as tf.Tensor2D;
    const pairs = [
      [dlrLoss(logits, labels), dlrLoss(moved, labels)],
      [dlrTargetedLoss(logits, labels, targets), dlrTargetedLoss(moved, labels, targets)],
    ];
    for (const [a, b] of pairs) {
      toArray(a).forEach((v, i) => {
        expect(toArray(b)[i]).toBeCloseTo(v, 5);
      });
    }
  });

  it('has a finite gradient in the logits', () => {
    const g = tf.grad((z: tf.Tensor) => tf.sum(dlrLoss(z as tf.Tensor2D, labels)))(logits);
    expect(toArray(g).every(Number.isFinite)).toBe(true);
  });
});

describe('apgd checkpoints', () => {
  it('equal ceil(p_j·N) for the paper recursion', () => {
    const n = 100;
    const p = [0, 0.22];
    while (true) {
      const [a, b] = [p[p.length - 2], p[p.length - 1]];
      // Rounded to 1e-9 so float error (0.22 + 0.19 = 0.41000000000000003) does not move ceil.
      const next = Math.round((b + Math.max(b - a - 0.03, 0.06)) * 1e9) / 1e9;
      if (next > 1) break;
      p.push(next);
    }
    const expected = p.map((v) => Math.ceil(Math.round(v * n * 1e6) / 1e6));
    expect(apgdCheckpoints(n)).toEqual(expected);
    expect(expected).toEqual([0, 22, 41, 57, 70, 80, 87, 93, 99]);
  });
});

const linear = twoClassModel();
const d = 6;
const wDiff = linear.weights.map(([w0, w1]) => w1 - w0);
const clip01 = (v: number) => Math.min(1, Math.max(0, v));

function batch(lo: number, hi: number, seed: number) {
  return {
    x: tf.tensor(values(4 * d, seed, lo, hi), [4, 2, 3, 1]),
    labels: tf.tensor1d([0, 0, 0, 0], 'int32'),
  };
}

function expectClose(got: number[], expected: number[], digits: number) {
  expect(got.length).toBe(expected.length);
  expected.forEach((e, i) => {
    expect(got[i]).toBeCloseTo(e, digits);
  });
}

describe('apgd on the linear two-class model', () => {
  it('linf APGD-CE reaches clip(x + eps·sign(w_other − w_y))', async () => {
    const { x, labels } = batch(0, 1, 2);
    const r = await apgd(linear, x, labels, { eps: 0.1, steps: 20, seed: 3 });
    const opt = toArray(x).map((v, i) => clip01(v + 0.1 * Math.sign(wDiff[i % d])));
    expectClose(toArray(r.xAdv), opt, 6);
    expect(r.gradientEvaluations).toBe(21);
  });

  it('restarts attack only the examples still standing', async () => {
    const { x, labels } = batch(0, 1, 2);
    const flip = await apgd(linear, x, labels, { eps: 1, steps: 20, seed: 3 });
    const broken = toArray(tf.argMax(linear.logits(flip.xAdv), 1));
    expect(broken).toEqual([1, 1, 1, 1]);
    // All four broken in the first run: the two restarts after it have nothing to attack.
    const all = await apgd(linear, x, labels, { eps: 1, steps: 20, restarts: 3, seed: 3 });
    expect(all.gradientEvaluations).toBe(21);
    expect(toArray(all.xAdv)).toEqual(toArray(flip.xAdv));
    // Nothing breaks at a tiny eps: every restart runs on the whole batch.
    const none = await apgd(linear, x, labels, { eps: 1e-4, steps: 20, restarts: 3, seed: 3 });
    expect(toArray(tf.argMax(linear.logits(none.xAdv), 1))).toEqual([0, 0, 0, 0]);
    expect(none.gradientEvaluations).toBe(63);
    tf.dispose([flip.xAdv, all.xAdv, none.xAdv]);
  });

  it('l2 APGD-CE reaches x + eps·(w_other − w_y)/‖w_other − w_y‖', async () => {
    const { x, labels } = batch(0.3, 0.7, 3);
    const r = await apgd(linear, x, labels, { eps: 0.2, norm: 'l2', steps: 100, seed: 4 });
    const size = Math.hypot(...wDiff);
    const opt = toArray(x).map((v, i) => v + (0.2 * wDiff[i % d]) / size);
    // The ce objective's margin term points the same way here; the last digits are convergence.
    expectClose(toArray(r.xAdv), opt, 3);
  });
});

const cnn4 = new TfjsClassifier(
  buildArchitecture('cnn-small', { inputShape: [8, 8, 1], numClasses: 4, seed: 2 }),
);
type Case = [string, Classifier, Record<string, unknown>];
const cases: Case[] = (['linf', 'l2'] as const).flatMap((norm): Case[] => [
  [`${norm} ce`, cnnModel(), { norm, loss: 'ce' }],
  [`${norm} dlr`, cnnModel(), { norm, loss: 'dlr' }],
  [`${norm} targeted`, cnn4, { norm, targeted: true, numTargets: 2 }],
]);

describe('apgd on cnn-small', () => {
  const x = tf.tensor(values(5 * 64, 8), [5, 8, 8, 1]);
  const labels = tf.tensor1d([0, 1, 2, 1, 0], 'int32');
  const run = (m: Classifier, c: Record<string, unknown>, eps: number, seed = 1) =>
    apgd(m, x, labels, { ...c, eps, steps: 6, restarts: 2, seed });

  it.each(cases)('%s: eps = 0 returns x exactly', async (_, m, c) => {
    const r = await run(m, c, 0);
    expect(toArray(r.xAdv)).toEqual(toArray(x));
    r.xAdv.dispose();
  });

  it.each(cases)('%s: inside the ball and bounds, reproducible, no leaks', async (_, m, c) => {
    const norm = c.norm as 'linf' | 'l2';
    const eps = norm === 'linf' ? 0.1 : 1;
    disposeAttackResult(await run(m, c, eps)); // warm up lazy weights
    const before = tf.memory().numTensors;
    const r = await run(m, c, eps);
    // xAdv, predictions, success, perturbationNorms.
    expect(tf.memory().numTensors).toBe(before + 4);
    const v = toArray(r.xAdv);
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    for (const n of toArray(perturbationNorms(r.xAdv, x, norm))) {
      expect(n).toBeLessThanOrEqual(eps + 1e-6);
    }
    expect(v).not.toEqual(toArray(x));
    const again = await run(m, c, eps);
    expect(toArray(again.xAdv)).toEqual(v);
    const other = await run(m, c, eps, 2);
    expect(toArray(other.xAdv)).not.toEqual(v);
    tf.dispose([r.xAdv, again.xAdv, other.xAdv]);
  });

  it('counts runs and reports progress; aborts without leaking', async () => {
    const seen: number[] = [];
    const r = await apgd(
      cnn4,
      x,
      labels,
      { eps: 0.1, steps: 3, targeted: true, numTargets: 2, restarts: 2 },
      { onProgress: (s, n) => seen.push(n - s) },
    );
    expect(r.runs).toBe(4);
    // Later runs attack only the examples still standing: at most 4 runs × 4 evaluations.
    expect(r.gradientEvaluations).toBeGreaterThanOrEqual(4);
    expect(r.gradientEvaluations).toBeLessThanOrEqual(16);
    // Steps left, falling to 0 (a run with nothing left to attack skips its steps at once).
    expect(seen[0]).toBe(11);
    expect(seen.at(-1)).toBe(0);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeLessThan(seen[i - 1]);
    disposeAttackResult(r);
    const before = tf.memory().numTensors;
    const ctl = new AbortController();
    const aborted = apgd(
      cnn4,
      x,
      labels,
      { eps: 0.1, steps: 5, targeted: true, numTargets: 2 },
      { signal: ctl.signal, onProgress: (s) => s === 3 && ctl.abort(new Error('stop')) },
    );
    await expect(aborted).rejects.toThrow('stop');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects bad configs with a path, and too few classes for DLR', async () => {
    const err = async (p: Promise<unknown>) => p.catch((e: unknown) => e as ParryError);
    const a = await err(apgd(cnnModel(), x, labels, { eps: 0.1, stpes: 3 } as never));
    expect(a).toBeInstanceOf(ParryError);
    expect((a as ParryError).code).toBe('BAD_OPTION');
    expect((a as ParryError).message).toMatch(/^apgd: .*stpes/);
    const b = await err(apgd(cnnModel(), x, labels, { eps: 0.1, targeted: true }));
    expect((b as ParryError).code).toBe('UNSUPPORTED');
    const c = await err(apgd(cnnModel(), x, labels, { eps: -1 }));
    expect((c as ParryError).message).toMatch(/^apgd: eps:/);
  });
});

describe('apgd against pgd on a trained model', () => {
  it('robust accuracy: APGD-T ≤ APGD-CE ≤ PGD < clean at the same step count', async () => {
    const shape = [8, 8, 1];
    const numClasses = 4;
    const train = syntheticDataset({ shape, numClasses, n: 480, seed: 21, noise: 0.3 });
    const test = syntheticDataset({
      shape,
      numClasses,
      n: 96,
      seed: 21,
      noise: 0.3,
      split: 'test',
    });
    const net = buildArchitecture('cnn-small', { inputShape: shape, numClasses, seed: 4 });
    await trainModel(net, train, { epochs: 8, batchSize: 16, lr: 3e-3, seed: 1 });
    const model = new TfjsClassifier(net);
    const x = tf.tensor(test.x, test.shape);
    const labels = tf.tensor1d(test.labels, 'int32');
    const accuracy = (xa: tf.Tensor) =>
      tf
        .tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(model.logits(xa), 1), labels), 'float32')))
        .dataSync()[0];
    const eps = 0.12;
    const steps = 20;
    const clean = accuracy(x);
    const accPgd = accuracy((await pgd(model, x, labels, { eps, steps, seed: 1 })).xAdv);
    const accCe = accuracy((await apgd(model, x, labels, { eps, steps, seed: 1 })).xAdv);
    const accT = accuracy(
      (await apgd(model, x, labels, { eps, steps, targeted: true, numTargets: 3, seed: 1 })).xAdv,
    );
    expect(clean).toBeGreaterThan(0.8);
    expect(accPgd).toBeLessThan(clean); // eps is large enough to matter
    expect(accCe).toBeLessThanOrEqual(accPgd);
    expect(accT).toBeLessThanOrEqual(accCe);
  });
});
