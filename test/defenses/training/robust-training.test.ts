/**
 * Robust training as a whole: fast-at's catastrophic-overfitting detector on synthetic accuracy
 * traces, the eps schedules (band logic, recorded sequence), early stopping restoring the best
 * epoch's weights, a short PGD-AT run that raises PGD accuracy over plain training, and no
 * tensor leaks over a training loop.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { pgd } from '../../../src/attacks/evasion/pgd.js';
import { syntheticDataset } from '../../../src/data/index.js';
import {
  adaptEps,
  BestCheckpoint,
  createPgdTraining,
  createSchedule,
  createTrades,
  detectCatastrophicOverfitting,
  fgsmRandomStart,
  type RobustCheck,
} from '../../../src/defenses/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { ParryError } from '../../../src/errors.js';
import { buildArchitecture, TfjsClassifier } from '../../../src/models/index.js';
import { countCorrect } from '../../../src/objectives/losses.js';
import { trainModel } from '../../../src/train/loop.js';
import { twoClassModel } from '../../attacks/helpers.js';

/** Runs the detector over a trace the way the CLI does (reference = best healthy epoch). */
function collapses(trace: RobustCheck[]): number[] {
  const fired: number[] = [];
  let best: RobustCheck | undefined;
  trace.forEach((cur, i) => {
    if (detectCatastrophicOverfitting(best, cur).collapsed) fired.push(i);
    else if (best === undefined || cur.pgd > best.pgd) best = cur;
  });
  return fired;
}

describe('fgsmRandomStart', () => {
  // Interior inputs (no clipping at the bounds) on a linear model: the CE gradient's sign is
  // sign(w_other − w_y), so x_adv − x − α·ε·sign(w_other − w_y) is the random start alone.
  const model = twoClassModel();
  const n = 200;
  const x = tf.tensor4d(
    Array.from({ length: n * 6 }, (_, i) => 0.4 + 0.2 * ((i * 0.618) % 1)),
    [n, 2, 3, 1],
  );
  const labels = tf.tensor1d(
    Array.from({ length: n }, (_, i) => i % 2),
    'int32',
  );
  const eps = 0.02;
  const step = (label: number) => model.weights.map((w) => Math.sign(w[1 - label] - w[label]));

  function startOf(xAdv: tf.Tensor, alpha: number): number[] {
    const xa = xAdv.dataSync();
    const xs = x.dataSync();
    // Example k = ⌊i/6⌋ has label k mod 2.
    return Array.from(xa, (v, i) => v - xs[i] - alpha * eps * step(Math.floor(i / 6) % 2)[i % 6]);
  }

  it("N-FGSM (noise 2, alpha 1, unprojected) starts up to 2ε out and steps α·ε along the gradient's sign", () => {
    const xAdv = fgsmRandomStart(
      model,
      x,
      labels,
      { eps, alpha: 1, norm: 'linf', noise: 2, project: false },
      new Rng(3),
    );
    const start = startOf(xAdv, 1).map(Math.abs);
    expect(Math.max(...start)).toBeLessThanOrEqual(2 * eps + 1e-6);
    expect(Math.max(...start)).toBeGreaterThan(1.9 * eps); // 1,200 uniform draws on [−2ε, 2ε]
    const dist = tf.tidy(() => tf.max(tf.abs(tf.sub(xAdv, x))).dataSync()[0]);
    expect(dist).toBeGreaterThan(2.5 * eps); // beyond the ε-ball: no projection
    xAdv.dispose();
  });

  it("Wong et al.'s default stays in the ε-ball and needs no start to move along the gradient", () => {
    const before = tf.memory().numTensors;
    const xAdv = fgsmRandomStart(model, x, labels, { eps, alpha: 1.25, norm: 'linf' }, new Rng(3));
    const dist = tf.tidy(() => tf.max(tf.abs(tf.sub(xAdv, x))).dataSync()[0]);
    expect(dist).toBeLessThanOrEqual(eps + 1e-6);
    xAdv.dispose();
    // noise 0, unprojected: exactly x + α·ε·sign(∇), the start being x itself.
    const plain = fgsmRandomStart(
      model,
      x,
      labels,
      { eps, alpha: 1, norm: 'linf', noise: 0, project: false },
      new Rng(3),
    );
    for (const v of startOf(plain, 1)) expect(Math.abs(v)).toBeLessThan(1e-6);
    plain.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('detectCatastrophicOverfitting', () => {
  it('fires when PGD accuracy collapses while FGSM accuracy stays high', () => {
    const trace = [
      { pgd: 0.3, fgsm: 0.4 },
      { pgd: 0.38, fgsm: 0.47 },
      { pgd: 0.42, fgsm: 0.5 },
      { pgd: 0.02, fgsm: 0.85 },
      { pgd: 0.0, fgsm: 0.92 },
    ];
    expect(collapses(trace)).toEqual([3, 4]);
    expect(detectCatastrophicOverfitting(trace[2], trace[3]).reason).toMatch(/0\.420 to 0\.020/);
  });

  it('fires on a collapse spread over epochs (a fast-at run at eps 0.125 on Fashion-MNIST)', () => {
    // Held-out PGD-10 / FGSM accuracy per epoch of that run: PGD fell 55% → 48% → 19%.
    const trace = [
      { pgd: 0.552, fgsm: 0.686 },
      { pgd: 0.48, fgsm: 0.772 },
      { pgd: 0.192, fgsm: 0.816 },
    ];
    expect(collapses(trace)).toEqual([2]);
    // Slower still: each epoch loses 12 points, none more than 0.2 from the one before.
    const slow = [0.55, 0.43, 0.31, 0.19].map((p) => ({ pgd: p, fgsm: 0.8 }));
    expect(collapses(slow)).toEqual([2, 3]);
  });

  it('does not fire on a healthy trace, a slow decline, or when FGSM accuracy falls too', () => {
    const healthy = [0.2, 0.3, 0.35, 0.37, 0.36, 0.38].map((p) => ({ pgd: p, fgsm: p + 0.1 }));
    expect(collapses(healthy)).toEqual([]);
    const robustOverfit = [0.4, 0.38, 0.35, 0.33].map((p) => ({ pgd: p, fgsm: p + 0.1 }));
    expect(collapses(robustOverfit)).toEqual([]);
    expect(
      collapses([
        { pgd: 0.4, fgsm: 0.5 },
        { pgd: 0.01, fgsm: 0.02 },
      ]),
    ).toEqual([]);
    expect(detectCatastrophicOverfitting(undefined, { pgd: 0, fgsm: 1 }).collapsed).toBe(false);
  });
});

describe('eps schedules', () => {
  it('adaptEps raises above the band, lowers below it, holds inside, never exceeds the target', () => {
    const band: [number, number] = [0.4, 0.6];
    expect(adaptEps(0.04, 0.8, band, 1.5, 0.1)).toBeCloseTo(0.06, 12);
    expect(adaptEps(0.08, 0.8, band, 1.5, 0.1)).toBe(0.1);
    expect(adaptEps(0.06, 0.2, band, 1.5, 0.1)).toBeCloseTo(0.04, 12);
    expect(adaptEps(0.06, 0.5, band, 1.5, 0.1)).toBe(0.06);
  });

  it('linear ramps eps and steps; adaptive follows the fed accuracies and its sequence is recorded', () => {
    const linear = createSchedule({ kind: 'linear', eps: 0.1, steps: 10, ramp: 0.5 });
    const at = (step: number) => linear.settingAt({ step, totalSteps: 100 });
    expect(at(4).eps).toBeCloseTo(0.01, 12);
    expect(at(4).steps).toBe(1);
    expect(at(24).eps).toBeCloseTo(0.05, 12);
    expect(at(24).steps).toBe(5);
    expect(at(24).stepSize).toBeCloseTo((2.5 * 0.05) / 5, 12);
    expect(at(80)).toEqual({ eps: 0.1, steps: 10, stepSize: 0.025 });

    const adaptive = createSchedule({ kind: 'adaptive', eps: 0.1, steps: 10, start: 0.25 });
    const p = { step: 0, totalSteps: 1 };
    const seq = [adaptive.settingAt(p).eps];
    for (const acc of [0.9, 0.9, 0.3, 0.5, 0.9, 0.9, 0.9]) seq.push(adaptive.endEpoch(acc));
    const expected = [0.025, 0.0375, 0.05625, 0.0375, 0.0375, 0.05625, 0.084375, 0.1];
    for (let i = 0; i < seq.length; i++) expect(seq[i]).toBeCloseTo(expected[i], 10);
    expect(adaptive.settingAt(p).eps).toBe(0.1);
  });

  it('a method follows its schedule: PGD-AT counts the scheduled attack steps', () => {
    const schedule = createSchedule({ kind: 'linear', eps: 0.1, steps: 4, ramp: 1 });
    const t = createPgdTraining({ eps: 0.1, steps: 4 }, schedule.settingAt);
    const model = buildArchitecture('mlp', { inputShape: [2, 2, 1], numClasses: 2, seed: 1 });
    const x = tf.fill([3, 2, 2, 1], 0.5);
    const y = tf.tensor1d([0, 1, 0], 'int32');
    tf.dispose(t.prepare?.(model, x, y, { step: 0, totalSteps: 4 })); // eps 0.025, 1 step
    tf.dispose(t.prepare?.(model, x, y, { step: 3, totalSteps: 4 })); // eps 0.1, 4 steps
    expect(t.cost.perExample()).toBeCloseTo((1 + 1 + 4 + 1) / 2, 12);
    tf.dispose([x, y]);
    model.dispose();
  });
});

describe('BestCheckpoint', () => {
  it('restores the weights of the epoch with the best robust accuracy', () => {
    const model = buildArchitecture('mlp', { inputShape: [2, 2, 1], numClasses: 2, seed: 1 });
    const best = new BestCheckpoint(model, 2);
    const weightsAt: number[][] = [];
    const scores = [0.2, 0.5, 0.4, 0.45];
    const stops: boolean[] = [];
    scores.forEach((score, i) => {
      // A fake epoch: set every weight to the epoch number.
      model.setWeights(model.getWeights().map((w) => tf.fill(w.shape, i + 1)));
      weightsAt.push(Array.from(model.getWeights()[0].dataSync().slice(0, 1)));
      stops.push(best.update(i + 1, score).stop);
    });
    expect(stops).toEqual([false, false, false, true]); // patience 2 after epoch 2
    expect(best.bestEpoch).toBe(2);
    best.restore();
    for (const w of model.getWeights())
      expect(Array.from(w.dataSync()).every((v) => v === 2)).toBe(true);
    model.dispose();
  });
});

describe('PGD adversarial training', () => {
  const shape = [8, 8, 1];
  const train = syntheticDataset({ shape, numClasses: 3, n: 300, seed: 4, noise: 0.15 });
  const test = syntheticDataset({
    shape,
    numClasses: 3,
    n: 150,
    seed: 4,
    noise: 0.15,
    split: 'test',
  });
  const eps = 0.25;

  async function pgdAccuracy(model: TfjsClassifier): Promise<{ clean: number; robust: number }> {
    const x = tf.tensor(test.x, test.shape);
    const y = tf.tensor1d(test.labels, 'int32');
    const { xAdv } = await pgd(model, x, y, { eps, steps: 20, seed: 3 });
    const [c, r] = tf.tidy(() => [
      countCorrect(model.logits(x), y),
      countCorrect(model.logits(xAdv), y),
    ]);
    const out = { clean: (await c.data())[0] / 150, robust: (await r.data())[0] / 150 };
    tf.dispose([x, y, xAdv, c, r]);
    return out;
  }

  it('raises PGD robust accuracy over plain training at the same eps', async () => {
    const run = async (defended: boolean) => {
      const model = buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 2 });
      const t = defended ? createPgdTraining({ eps, steps: 5, seed: 1 }) : undefined;
      await trainModel(
        model,
        train,
        { epochs: 8, batchSize: 50, seed: 1 },
        { lossFn: t?.lossFn, prepare: t?.prepare },
      );
      const classifier = new TfjsClassifier(model);
      const acc = await pgdAccuracy(classifier);
      classifier.dispose();
      return acc;
    };
    const plain = await run(false);
    const robust = await run(true);
    expect(plain.clean).toBeGreaterThan(0.9);
    expect(robust.clean).toBeGreaterThan(0.8);
    expect(robust.robust).toBeGreaterThan(plain.robust + 0.3);
  }, 60_000);

  it('leaks no tensors over a training loop (PGD-AT and TRADES)', async () => {
    const small = syntheticDataset({ shape, numClasses: 3, n: 60, seed: 5 });
    const model = buildArchitecture('mlp', { inputShape: shape, numClasses: 3, seed: 2 });
    for (const t of [
      createPgdTraining({ eps, steps: 2, mix: 0.5 }),
      createTrades({ eps, steps: 2, beta: 1 }),
    ]) {
      // One run to create the optimizer's lazily built state, then count.
      await trainModel(
        model,
        small,
        { epochs: 1, batchSize: 20 },
        { lossFn: t.lossFn, prepare: t.prepare },
      );
      const before = tf.memory().numTensors;
      await trainModel(
        model,
        small,
        { epochs: 2, batchSize: 20 },
        { lossFn: t.lossFn, prepare: t.prepare },
      );
      expect(tf.memory().numTensors).toBe(before);
    }
    model.dispose();
  });

  it('rejects bad configs naming the option', () => {
    expect(() => createPgdTraining({ eps: -0.1 })).toThrow(/pgdTraining: eps/);
    expect(() => createTrades({ eps: 0.1, beta: -1 })).toThrow(/trades: beta/);
    expect(() => createPgdTraining({ eps: 0.1, mix: 2 })).toThrow(ParryError);
  });
});
