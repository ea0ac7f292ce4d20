/**
 * runEvaluation on the bundled MLP (fast): no tensor leaks, results.json written and partial.jsonl
 * removed, a resumed run after an abort gives the same numbers without recomputing finished
 * cells, a changed config is refused, gradient masking behind a non-adaptive defense warns, and a
 * worker pool gives the same numbers as one thread (the pool runs dist/: `npm run build` first).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { WorkerPool } from '../../src/engine/pool.js';
import { type EvaluateConfigInput, parseEvaluateConfig } from '../../src/evaluate/config.js';
import { keyString } from '../../src/evaluate/partial.js';
import type { EvaluationResults } from '../../src/evaluate/results.js';
import { runEvaluation, type StageInfo } from '../../src/evaluate/run.js';
import { caught } from '../models/tmp.js';

const root = packageRoot();
const raw: EvaluateConfigInput = {
  n: 12,
  batchSize: 6,
  seed: 3,
  models: [
    { path: 'models/fmnist-mlp' },
    { path: 'models/fmnist-mlp-ibp', certify: { ibp: true } },
  ],
  attacks: [
    { attack: 'fgsm' },
    { attack: 'pgd', params: { steps: 3 } },
    { attack: 'deepfool', params: { steps: 5 } },
  ],
  eps: { linf: [0.05, 0.1], l2: [1] },
  // The MLP gets a (small) smoothing certificate; the IBP model its own certify, which replaces it.
  certify: { smoothing: { sigma: 0.25, n0: 10, n: 60, batchSize: 70, radii: [0, 0.25] } },
  groups: { byLabel: { Bag: 'bags', Trouser: 'bottoms' } },
  gallery: { examples: 1 },
  explain: { methods: ['gradient'] },
  honesty: { examples: 6, unboundedSteps: 5, moreSteps: { factor: 2, restarts: 1 } },
};
const config = parseEvaluateConfig(raw, root);
const outDir = () => mkdtempSync(path.join(tmpdir(), 'parry-evaluate-'));

/** The results without wall-clock fields (seconds, timestamps). */
function numbers(r: EvaluationResults): unknown {
  return JSON.parse(JSON.stringify(r), (k, v) =>
    ['seconds', 'started', 'finished'].includes(k) ? undefined : v,
  );
}

let reference: EvaluationResults;

describe('runEvaluation', () => {
  it('evaluates every target without leaking tensors and writes results.json', async () => {
    const dir = outDir();
    const before = tf.memory().numTensors;
    reference = await runEvaluation(config, { outDir: dir });
    expect(tf.memory().numTensors).toBe(before);
    expect(existsSync(path.join(dir, 'partial.jsonl'))).toBe(false);
    expect(JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8'))).toEqual(reference);
    expect(reference.dataset.groups?.filter((g) => g === 'bags').length).toBe(
      reference.dataset.labels.filter((y) => y === 8).length,
    );
    const [mlp, ibp] = reference.targets;
    expect(mlp.id).toBe('fmnist-mlp');
    expect(ibp.trainedAgainst).toBe('ibp linf 0.11');
    // fgsm, pgd at 3 budgets; deepfool once per norm, thresholded at each budget.
    expect(mlp.attacks.map((c) => `${c.attack} ${c.norm} ${c.eps}`)).toEqual([
      'fgsm linf 0.05',
      'fgsm linf 0.1',
      'fgsm l2 1',
      'pgd linf 0.05',
      'pgd linf 0.1',
      'pgd l2 1',
      'deepfool linf 0.05',
      'deepfool linf 0.1',
      'deepfool l2 1',
    ]);
    expect(mlp.worstCase.map((w) => `${w.norm}:${w.eps}`)).toEqual([
      'linf:0.05',
      'linf:0.1',
      'l2:1',
    ]);
    expect(mlp.certified.map((c) => c.method)).toEqual(['smoothing']);
    expect(ibp.certified.map((c) => [c.method, c.curve.length])).toEqual([['ibp', 2]]);
    expect(mlp.honesty.map((h) => h.id)).toEqual([
      'unbounded-eps',
      'monotone-eps',
      'more-steps',
      'black-vs-white',
      'random-noise',
      'gradients',
    ]);
    expect(mlp.honesty.find((h) => h.id === 'black-vs-white')?.status).toBe('skip');
    expect(mlp.gallery.length).toBeGreaterThan(0);
    for (const g of mlp.gallery) {
      expect(g.clean).toMatch(/^data:image\/png;base64,iVBOR/);
      expect(g.adversarial).toMatch(/^data:image\/png;base64,/);
      expect(g.perturbation).toMatch(/^data:image\/png;base64,/);
      expect(g.saliency.map((s) => s.method)).toEqual(['gradient']);
      expect(g.adversarialPrediction).not.toBe(g.label);
      expect(g.cleanPrediction).toBe(g.label);
    }
    expect(mlp.fairness.perGroup?.map((g) => g.group).sort()).toEqual(
      [...new Set(reference.dataset.groups)].sort(),
    );
    expect(mlp.cost.gradientEvaluations).toBeGreaterThan(0);
  });

  it('resumes after an abort with the same numbers, without recomputing finished cells', async () => {
    const dir = outDir();
    const controller = new AbortController();
    let started = 0;
    await expect(
      runEvaluation(config, {
        outDir: dir,
        signal: controller.signal,
        onStage: () => {
          if (++started === 6) controller.abort(new Error('stopped by the test'));
          return undefined;
        },
      }),
    ).rejects.toThrow(/stopped by the test/);
    const partial = path.join(dir, 'partial.jsonl');
    const lines = readFileSync(partial, 'utf8').trim().split('\n');
    const finished = new Set(lines.slice(1).map((l) => keyString(JSON.parse(l).key)));
    expect(finished.size).toBeGreaterThanOrEqual(5);

    // Without --resume the finished cells are not overwritten; with another config, refused.
    expect((await caught(() => runEvaluation(config, { outDir: dir }))).message).toMatch(
      /set resume to continue it/, // the library names options; parry evaluate says --resume
    );
    const other = parseEvaluateConfig({ ...raw, n: 10 }, root);
    expect(
      (await caught(() => runEvaluation(other, { outDir: dir, resume: true }))).message,
    ).toMatch(/another config .*write to another outDir/);

    const stages: StageInfo[] = [];
    const resumed = await runEvaluation(config, {
      outDir: dir,
      resume: true,
      onStage: (s) => {
        stages.push(s);
        return undefined;
      },
    });
    const computed = stages.filter((s) => !s.cached).map((s) => keyString(s));
    const cached = stages.filter((s) => s.cached).map((s) => keyString(s));
    expect(new Set(cached)).toEqual(finished);
    expect(computed.filter((k) => finished.has(k))).toEqual([]);
    expect(numbers(resumed)).toEqual(numbers(reference));
    expect(existsSync(partial)).toBe(false);
  });

  it('recomputes a cell whose line was torn, and the numbers stay the same', async () => {
    const dir = outDir();
    const controller = new AbortController();
    let started = 0;
    await runEvaluation(config, {
      outDir: dir,
      signal: controller.signal,
      onStage: () => {
        if (++started === 4) controller.abort(new Error('stop'));
        return undefined;
      },
    }).catch(() => undefined);
    const partial = path.join(dir, 'partial.jsonl');
    const text = readFileSync(partial, 'utf8');
    writeFileSync(partial, text.slice(0, text.length - 40)); // a torn last line
    const resumed = await runEvaluation(config, { outDir: dir, resume: true });
    expect(numbers(resumed)).toEqual(numbers(reference));
  });

  it('warns about gradient masking behind a defense attacked without BPDA', async () => {
    const masked = parseEvaluateConfig(
      {
        ...raw,
        models: [
          {
            path: 'models/fmnist-mlp',
            defense: { preprocess: 'squeeze-bits:bits=2', adaptive: 'none' },
          },
        ],
        attacks: [{ attack: 'pgd', params: { steps: 3 } }],
        gallery: { examples: 0 },
      },
      root,
    );
    const r = await runEvaluation(masked, { outDir: outDir() });
    const t = r.targets[0];
    expect(t.id).toBe('fmnist-mlp + squeeze-bits:bits=2');
    const g = t.honesty.find((h) => h.id === 'gradients')!;
    expect(g.status).toBe('warn');
    expect(g.values.fraction).toBe(1);
  });

  it('certifies a smoothed target instead of attacking it, and smooths others on request', async () => {
    const smoothing = { sigma: 0.25, n0: 10, n: 60, batchSize: 70, radii: [0, 0.25] };
    const smoothed = parseEvaluateConfig(
      {
        ...raw,
        n: 6,
        models: [
          { path: 'models/fmnist-mlp', name: 'mlp-smoothed', defense: { smoothing } },
          { path: 'models/fmnist-mlp', certify: { smoothing } },
        ],
        attacks: [{ attack: 'fgsm' }],
        honesty: { enabled: false },
      },
      root,
    );
    const before = tf.memory().numTensors;
    const r = await runEvaluation(smoothed, { outDir: outDir() });
    expect(tf.memory().numTensors).toBe(before);
    const [s, plain] = r.targets;
    expect(s.id).toBe('mlp-smoothed + smoothing sigma=0.25');
    expect(s.attacks).toEqual([]);
    expect(s.certified.map((c) => c.method)).toEqual(['smoothing']);
    const cert = s.certified[0];
    // The smoothed target's clean predictions are the smoothed classifier's (-1 = abstained).
    const correct = s.clean.predictions.filter((p, i) => p === r.dataset.labels[i]).length;
    expect(cert.curve[0].accuracy).toBe(correct / 6);
    expect(cert.abstainRate).toBe(s.clean.predictions.filter((p) => p === -1).length / 6);
    expect(plain.attacks.length).toBe(3);
    expect(plain.certified.map((c) => c.method)).toEqual(['smoothing']);
    expect(plain.certified[0].curve.map((p) => p.radius)).toEqual([0, 0.25]);
  });

  it('attacks a preprocessing defense across the pool with the same numbers', async () => {
    const defended = parseEvaluateConfig(
      {
        ...raw,
        n: 8,
        batchSize: 4,
        models: [
          {
            path: 'models/fmnist-mlp',
            defense: { preprocess: 'noise:kind=uniform,sigma=0.1,squeeze-bits:bits=4' },
          },
        ],
        attacks: [{ attack: 'pgd', params: { steps: 3 } }],
        eps: { linf: [0.1] },
        certify: {},
        gallery: { examples: 0 },
        honesty: { enabled: false },
      },
      root,
    );
    const local = await runEvaluation(defended, { outDir: outDir() });
    const pool = new WorkerPool({ workers: 2 });
    try {
      const pooled = await runEvaluation(defended, { outDir: outDir(), pool });
      expect(numbers(pooled)).toEqual(numbers(local));
      expect(JSON.stringify(pooled)).not.toMatch(/main thread/);
    } finally {
      await pool.close();
    }
  });

  it('gives the same numbers across a worker pool', async () => {
    const pool = new WorkerPool({ workers: 1 });
    try {
      const pooled = await runEvaluation(config, { outDir: outDir(), pool });
      expect(numbers(pooled)).toEqual(numbers(reference));
    } finally {
      await pool.close();
    }
  });
});
