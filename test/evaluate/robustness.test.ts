/**
 * evaluateAttack against an independent computation: on a two-class linear model FGSM's result
 * is x' = clip(x + eps·sign(w_other − w_y)), so which examples survive is known in closed form.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { findAttack } from '../../src/attacks/registry.js';
import type { Dataset } from '../../src/data/index.js';
import { evaluateAttack } from '../../src/evaluate/robustness.js';
import { twoClassModel, values } from '../attacks/helpers.js';

const model = twoClassModel();
const N = 60;
const data: Dataset = {
  name: 'linear-test',
  x: Float32Array.from(values(N * 6, 3)),
  shape: [N, 2, 3, 1],
  labels: Int32Array.from(values(N, 4), (v) => (v < 0.5 ? 0 : 1)),
  numClasses: 2,
};

function score(x: number[], c: number): number {
  return x.reduce((s, v, i) => s + v * model.weights[i][c], model.bias[c]);
}

/** Closed-form FGSM outcome per example: clean prediction, adversarial prediction, linf size. */
function closedForm(eps: number) {
  return Array.from({ length: N }, (_, n) => {
    const x = Array.from(data.x.subarray(n * 6, n * 6 + 6));
    const y = data.labels[n];
    const adv = x.map((v, i) => {
      const d = model.weights[i][1 - y] - model.weights[i][y];
      return Math.min(1, Math.max(0, v + eps * Math.sign(d)));
    });
    const pred = (z: number[]) => (score(z, 1) > score(z, 0) ? 1 : 0);
    return {
      y,
      clean: pred(x),
      adv: pred(adv),
      size: Math.max(...adv.map((v, i) => Math.abs(v - x[i]))),
    };
  });
}

describe('evaluateAttack', () => {
  for (const eps of [0, 0.05, 0.2]) {
    it(`FGSM eps ${eps} on a linear model matches the closed form`, async () => {
      const before = tf.memory().numTensors;
      const r = await evaluateAttack(
        model,
        data,
        findAttack('fgsm')!,
        { norm: 'linf', eps, targeted: false, seed: 1 },
        { batchSize: 16, keepExamples: 3 },
      );
      expect(tf.memory().numTensors).toBe(before);
      const want = closedForm(eps);
      const correct = want.filter((w) => w.clean === w.y);
      const robust = correct.filter((w) => w.adv === w.y);
      const broken = correct.filter((w) => w.adv !== w.y);
      expect(r.n).toBe(N);
      expect(r.cleanAccuracy).toBeCloseTo(correct.length / N, 10);
      expect(r.robustAccuracy).toBeCloseTo(robust.length / N, 10);
      expect(r.attackSuccessRate).toBeCloseTo(broken.length / correct.length, 10);
      expect(r.gradientEvaluations).toBe(N);
      if (broken.length > 0) {
        expect(r.maxPerturbation).toBeCloseTo(Math.max(...broken.map((b) => b.size)), 5);
      } else {
        expect(r.maxPerturbation).toBeNaN();
      }
      expect(r.examples.shape).toEqual([3, 2, 3, 1]);
      expect(Array.from(r.examples.x)).toEqual(Array.from(data.x.subarray(0, 18)));
    });
  }

  it('robust accuracy never rises with eps, and PGD is at least as strong as FGSM', async () => {
    const run = async (name: string, eps: number) =>
      (
        await evaluateAttack(model, data, findAttack(name)!, {
          norm: 'linf',
          eps,
          ...(name === 'pgd' ? { steps: 10 } : {}),
          targeted: false,
          seed: 2,
        })
      ).robustAccuracy;
    const grid = [0, 0.02, 0.05, 0.1, 0.3];
    const fgsmAcc = await Promise.all(grid.map((e) => run('fgsm', e)));
    const pgdAcc = await Promise.all(grid.map((e) => run('pgd', e)));
    for (let i = 1; i < grid.length; i++) expect(pgdAcc[i]).toBeLessThanOrEqual(pgdAcc[i - 1]);
    grid.forEach((_, i) => {
      expect(pgdAcc[i]).toBeLessThanOrEqual(fgsmAcc[i]);
    });
    expect(pgdAcc[grid.length - 1]).toBeLessThan(pgdAcc[0]);
  });

  it('reports progress inside a batch, whole examples, never going back', async () => {
    const { loadClassifier } = await import('../../src/models/index.js');
    const { loadDataset, takeFirst } = await import('../../src/data/index.js');
    const mlp = await loadClassifier('models/fmnist-mlp');
    const fmnist = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 30);
    const params = { norm: 'linf' as const, eps: 0.05, seed: 1 };
    // A small budget, through the options each attack reads.
    const budget = (name: string) =>
      name === 'square'
        ? { maxQueries: 40 }
        : name === 'auto'
          ? { steps: 8, maxQueries: 40 }
          : { steps: 8 };
    try {
      for (const attack of ['pgd', 'apgd-ce', 'apgd-t', 'square', 'auto']) {
        const seen: number[] = [];
        const entry = findAttack(attack)!;
        await evaluateAttack(
          mlp,
          fmnist,
          entry,
          { ...params, ...budget(attack), targeted: false },
          {
            batchSize: 20,
            onProgress: (done, total) => {
              expect(total).toBe(30);
              seen.push(done);
            },
          },
        );
        // Progress before the first batch (20 examples) is done: the attack's own steps.
        expect(
          seen.some((d) => d > 0 && d < 20),
          `${attack}: ${seen}`,
        ).toBe(true);
        expect(
          seen.every((d) => Number.isInteger(d)),
          `${attack}: ${seen}`,
        ).toBe(true);
        expect(
          seen.every((d, i) => i === 0 || d >= seen[i - 1]),
          `${attack}: ${seen}`,
        ).toBe(true);
        expect(seen[seen.length - 1]).toBe(30);
      }
    } finally {
      mlp.dispose();
    }
  });

  it('targeted attacks count success as reaching the target', async () => {
    const r = await evaluateAttack(model, data, findAttack('pgd')!, {
      norm: 'linf',
      eps: 0.5,
      steps: 10,
      targeted: true,
      seed: 3,
    });
    // Two classes: the only other class is the target, so success = misclassification.
    for (const e of r.perExample) expect(e.target).toBe(1 - e.label);
    const correct = r.perExample.filter((e) => e.clean === e.label);
    const hit = correct.filter((e) => e.adversarial === e.target).length;
    expect(r.attackSuccessRate).toBeCloseTo(hit / correct.length, 10);
  });
});

describe('evaluateAttackPooled', () => {
  it('spreads batches over workers and matches the in-process evaluation exactly', async () => {
    const { loadClassifier } = await import('../../src/models/index.js');
    const { loadDataset, takeFirst } = await import('../../src/data/index.js');
    const { WorkerPool } = await import('../../src/engine/pool.js');
    const { evaluateAttackPooled } = await import('../../src/evaluate/robustness.js');
    const dir = 'models/fmnist-cnn-small';
    const cnn = await loadClassifier(dir);
    const test = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 24);
    const params = { norm: 'linf' as const, eps: 0.05, steps: 3, targeted: true, seed: 7 };
    const pgd = findAttack('pgd')!;
    const opts = { batchSize: 8, keepExamples: 10 };
    const local = await evaluateAttack(cnn, test, pgd, params, opts);
    const pool = new WorkerPool({ workers: 2, backend: tf.getBackend() });
    try {
      const pooled = await evaluateAttackPooled(pool, dir, 10, test, pgd, params, opts);
      expect(pooled.perExample).toEqual(local.perExample);
      expect(pooled.robustAccuracy).toBe(local.robustAccuracy);
      expect(pooled.gradientEvaluations).toBe(local.gradientEvaluations);
      expect(Array.from(pooled.examples.xAdv)).toEqual(Array.from(local.examples.xAdv));
      expect(Array.from(pooled.examples.x)).toEqual(Array.from(test.x.subarray(0, 10 * 784)));
    } finally {
      await pool.close();
      cnn.dispose();
    }
  });

  it('attacks a randomised preprocessing defense in the workers as in this thread', async () => {
    const { loadClassifier } = await import('../../src/models/index.js');
    const { loadDataset, takeFirst } = await import('../../src/data/index.js');
    const { WorkerPool } = await import('../../src/engine/pool.js');
    const { evaluateAttackPooled } = await import('../../src/evaluate/robustness.js');
    const { preprocessAttacker } = await import('../../src/adaptive/bpda.js');
    const { buildPreprocessors } = await import('../../src/defenses/preprocess/spec.js');
    const dir = 'models/fmnist-mlp';
    const mlp = await loadClassifier(dir);
    const test = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 18);
    const preprocess = 'noise:kind=gaussian,sigma=0.2,squeeze-bits:bits=3';
    const chain = await buildPreprocessors(preprocess);
    const params = { norm: 'linf' as const, eps: 0.1, steps: 3, targeted: false, seed: 5 };
    const pgd = findAttack('pgd')!;
    const opts = { batchSize: 6, keepExamples: 4 };
    const pool = new WorkerPool({ workers: 2, backend: tf.getBackend() });
    try {
      for (const adaptive of ['bpda', 'none'] as const) {
        const factory = (seed: number) => preprocessAttacker(mlp, chain, adaptive, seed);
        const before = tf.memory().numTensors;
        const local = await evaluateAttack(factory, test, pgd, params, opts);
        expect(tf.memory().numTensors).toBe(before);
        const target = { modelDir: dir, preprocess, adaptive };
        const pooled = await evaluateAttackPooled(pool, target, 10, test, pgd, params, opts);
        expect(pooled.perExample).toEqual(local.perExample);
        expect(Array.from(pooled.examples.xAdv)).toEqual(Array.from(local.examples.xAdv));
        // The noise is drawn per batch from the batch's seed: the undefended model's predictions
        // differ, so the chain ran in the workers (sigma 0.2 flips some of the 18).
        const plain = await evaluateAttack(mlp, test, pgd, params, opts);
        expect(pooled.perExample.map((e) => e.clean)).not.toEqual(
          plain.perExample.map((e) => e.clean),
        );
      }
    } finally {
      await pool.close();
      mlp.dispose();
    }
  });
});
