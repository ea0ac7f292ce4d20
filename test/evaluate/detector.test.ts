/**
 * A detector in front of a model in `parry evaluate`: it is fitted and calibrated on training
 * examples, the target abstains exactly where an independently fitted copy of the detector fires,
 * a rejected attacked input counts as defended, the joint adaptive attack runs at every budget
 * and the worst case includes it; and a detector cannot share a target with preprocessing.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { loadDataset, sliceDataset, takeFirst } from '../../src/data/index.js';
import { MahalanobisDetector } from '../../src/defenses/detection/mahalanobis.js';
import { packageRoot } from '../../src/engine/paths.js';
import { parseEvaluateConfig } from '../../src/evaluate/config.js';
import { runEvaluation } from '../../src/evaluate/run.js';
import { loadClassifier } from '../../src/models/index.js';

const root = packageRoot();
const N = 16;
const detector = {
  name: 'mahalanobis',
  fpr: 0.1,
  fitExamples: 300,
  calibrationExamples: 200,
  jointSteps: 5,
} as const;

describe('evaluate with a detector', () => {
  it('abstains where the detector fires, runs the joint attack, counts rejections as defended', async () => {
    const config = parseEvaluateConfig(
      {
        n: N,
        batchSize: 8,
        seed: 2,
        models: [{ path: 'models/fmnist-mlp', defense: { detector } }],
        attacks: [{ attack: 'fgsm' }],
        eps: { linf: [0.05, 0.1], l2: [1] },
        honesty: { enabled: false },
      },
      root,
    );
    const before = tf.memory().numTensors;
    const results = await runEvaluation(config, {
      outDir: mkdtempSync(path.join(tmpdir(), 'parry-detector-')),
    });
    expect(tf.memory().numTensors).toBe(before);
    const [t] = results.targets;
    expect(t.id).toBe('fmnist-mlp + mahalanobis detector');
    expect(t.defense).toBe('mahalanobis detector, fpr 0.1');

    // An independent copy of the detector, fitted and calibrated on the same training examples.
    const model = await loadClassifier(path.join(root, 'models/fmnist-mlp'));
    const train = loadDataset('fashion-mnist-subset', 'train', { seed: 2 });
    const fit = takeFirst(train, 300);
    const cal = sliceDataset(train, 300, 500);
    const test = takeFirst(loadDataset('fashion-mnist-subset', 'test', { seed: 2 }), N);
    const d = new MahalanobisDetector();
    const [x, y, calX, testX] = [
      tf.tensor(fit.x, fit.shape),
      tf.tensor1d(fit.labels, 'int32'),
      tf.tensor(cal.x, cal.shape),
      tf.tensor(test.x, test.shape),
    ];
    await d.fit(model, x, y);
    d.calibrate(calX, 0.1);
    const fires = d.detect(testX);
    const plain = Array.from(tf.tidy(() => tf.argMax(model.logits(testX), 1)).dataSync());
    tf.dispose([x, y, calX, testX]);
    d.dispose();
    model.dispose();
    expect(t.clean.predictions).toEqual(plain.map((p, i) => (fires[i] ? -1 : p)));

    const joint = t.attacks.filter((c) => c.attack === 'joint');
    expect(joint.map((c) => `${c.norm} ${c.eps}`)).toEqual(['linf 0.05', 'linf 0.1', 'l2 1']);
    for (const c of t.attacks) {
      c.robust.forEach((r, i) => {
        const ok = t.clean.predictions[i] === results.dataset.labels[i];
        const adv = c.adversarial[i];
        expect(r).toBe(ok && (adv === results.dataset.labels[i] || adv === -1) ? 1 : 0);
      });
    }
    for (const w of t.worstCase) {
      for (const c of t.attacks.filter((c) => c.norm === w.norm && c.eps === w.eps)) {
        expect(w.robustAccuracy).toBeLessThanOrEqual(c.robustAccuracy);
      }
    }
  });

  it('refuses a detector combined with preprocessing, naming the path', () => {
    expect(() =>
      parseEvaluateConfig(
        {
          models: [
            { path: 'models/fmnist-mlp', defense: { detector, preprocess: 'squeeze-bits:bits=4' } },
          ],
          attacks: [{ attack: 'fgsm' }],
        },
        root,
      ),
    ).toThrow(/models\[0\]\.defense\.detector: a detector cannot be combined/);
  });
});
