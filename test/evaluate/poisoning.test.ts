/**
 * The evaluate config's poisoning section on a small synthetic set: recipes trained and measured
 * (a patch backdoor succeeds; a label flip has no ASR), data inspections scored against the
 * recipe with ROC curves that agree with their numbers, STRIP's acceptance rates, a defence that
 * does not apply reported as skipped, DPA's curve, the report section, resume, and config errors
 * that name their path.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { type EvaluateConfigInput, parseEvaluateConfig } from '../../src/evaluate/config.js';
import { rocPoints } from '../../src/evaluate/poisoning.js';
import type { EvaluationResults } from '../../src/evaluate/results.js';
import { runEvaluation } from '../../src/evaluate/run.js';
import { renderReport } from '../../src/report/index.js';

const root = packageRoot();
const raw: EvaluateConfigInput = {
  n: 10,
  models: [{ path: 'models/fmnist-mlp' }],
  honesty: { enabled: false },
  poisoning: {
    dataset: 'synthetic:8x8x1:4:400',
    testN: 100,
    train: { arch: 'mlp', epochs: 4, batchSize: 32, seed: 1 },
    recipes: [
      { attack: 'badnets', params: { rate: 0.1, target: 0, patchSize: 2 } },
      { attack: 'label-flip', params: { rate: 0.2 } },
    ],
    defenses: [
      { method: 'knn', params: { k: 10 } },
      { method: 'spectral', params: { expectedFraction: 0.1 }, retrain: false },
      { method: 'strip', params: { samples: 10 } },
      { method: 'fine-pruning' },
    ],
    cleanExamples: 100,
    dpa: { k: 3, arch: 'mlp', epochs: 2 },
  },
};

describe('rocPoints', () => {
  it('walks the scores from the top, ties together, from (0, 0) to (1, 1)', () => {
    const scores = Float64Array.from([0.9, 0.8, 0.8, 0.1, 0.5]);
    // Poisoned: 0 and 2. Order 0 (P), {1 N, 2 P} tied, 4 (N), 3 (N).
    expect(rocPoints(scores, [0, 2])).toEqual([
      [0, 0],
      [0, 0.5],
      [1 / 3, 1],
      [2 / 3, 1],
      [1, 1],
    ]);
  });
});

describe('the poisoning section', () => {
  let results: EvaluationResults;
  const config = parseEvaluateConfig(raw, root);

  it('trains, poisons, measures and defends, without leaking tensors', async () => {
    const before = tf.memory().numTensors;
    results = await runEvaluation(config, {
      outDir: mkdtempSync(path.join(tmpdir(), 'parry-poison-')),
    });
    expect(tf.memory().numTensors).toBe(before);
    const p = results.poisoning!;
    expect(p.testExamples).toBe(100);
    expect(p.reference.cleanAccuracy).toBeGreaterThan(0.9);
    expect(p.reference.asr).toBeNull();
    const [badnets, flip] = p.recipes;
    expect(badnets).toMatchObject({
      id: 'badnets 0.1',
      poisoned: 40,
      examples: 400,
      targetClass: 0,
    });
    expect(badnets.poisonedModel.asr).toBeGreaterThan(0.8);
    expect(flip).toMatchObject({ id: 'label-flip 0.2', poisoned: 80, labelsChanged: true });
    expect(flip.poisonedModel.asr).toBeNull();
    for (const r of p.recipes) {
      expect(r.defenses.map((d) => d.method)).toEqual(['knn', 'spectral', 'strip', 'fine-pruning']);
      const [knn, spectral, strip, pruning] = r.defenses;
      // Retrained after k-NN; spectral asked not to.
      expect(knn.after).not.toBeNull();
      expect(spectral.after).toBeNull();
      for (const d of [knn, spectral]) {
        const det = d.detection!;
        const roc = det.roc;
        expect(roc[0]).toEqual([0, 0]);
        expect(roc[roc.length - 1]).toEqual([1, 1]);
        for (let i = 1; i < roc.length; i++) {
          expect(roc[i][0]).toBeGreaterThanOrEqual(roc[i - 1][0]);
          expect(roc[i][1]).toBeGreaterThanOrEqual(roc[i - 1][1]);
        }
        // The trapezoid area under the curve is the AUC (ties counted one half).
        let area = 0;
        for (let i = 1; i < roc.length; i++) {
          area += ((roc[i][0] - roc[i - 1][0]) * (roc[i][1] + roc[i - 1][1])) / 2;
        }
        // (The curve is thinned to about 200 points: close, not equal.)
        expect(area).toBeCloseTo(det.auc, 2);
      }
      // A flipped label disagrees with its neighbours.
      if (r === flip) expect(knn.detection!.recall).toBeGreaterThan(0.8);
      // STRIP has a trigger to look for only in the backdoor recipe.
      if (r === badnets) {
        expect(strip.input!.falseRejectionTarget).toBe(0.01);
        expect(strip.input!.falseAcceptance).toBeGreaterThanOrEqual(0);
        expect(strip.input!.falseAcceptance).toBeLessThanOrEqual(1);
      } else expect(strip.input).toBeNull();
      // The MLP has no convolution to prune: reported, not fatal.
      expect(pruning.skipped).toMatch(/no Conv2D layer/);
      expect(r.dpa!.k).toBe(3);
      expect(r.dpa!.curve[0].accuracy).toBeCloseTo(r.dpa!.accuracy, 12);
    }
    expect(results.notes.some((n) => /fine-pruning skipped/.test(n))).toBe(true);
  }, 240_000);

  it('the report shows the section: before/after table, ROC chart, DPA', () => {
    const html = renderReport(results);
    expect(html).toContain('id="poisoning"');
    expect(html).toContain('none (clean reference)');
    expect(html).toContain('badnets 0.1');
    expect(html).toContain('Poison detection — ROC');
    expect(html).toContain('Deep Partition Aggregation');
    expect(html).toMatch(/triggered inputs accepted/);
  });

  it('refuses bad recipe and defence options, naming their path', () => {
    const bad = (poisoning: unknown) => () =>
      parseEvaluateConfig({ ...raw, poisoning } as EvaluateConfigInput, root);
    expect(bad({ recipes: [{ attack: 'badnets', params: { rate: 2 } }] })).toThrow(
      /poisoning\.recipes\[0\]\.params.*rate/,
    );
    expect(
      bad({
        recipes: [{ attack: 'badnets' }],
        defenses: [{ method: 'knn', params: { fraction: 0.1 } }],
      }),
    ).toThrow(/poisoning\.defenses\[0\]\.params.*fraction/);
    expect(bad({ recipes: [{ attack: 'nope' }] })).toThrow(/poisoning\.recipes\[0\]\.attack/);
    expect(
      bad({ recipes: [{ attack: 'badnets' }], defenses: [{ method: 'strip', params: { k: 3 } }] }),
    ).toThrow(/strip reads samples, frr and seed/);
  });
});
