/**
 * `parry detect --save DIR`: the saved detector is the evaluated one (same threshold, for an
 * unsupervised and a supervised detector), fitted for the model's content hash, its threshold
 * the (⌊fpr·n⌋+1)-th largest score of the held-out calibration examples (recomputed here from
 * the loaded detector); bad --save uses exit 2 with one line before any work. Runs the compiled
 * CLI (`npm run build` first).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDataset, sliceDataset } from '../../src/data/index.js';
import { classifierHash, loadDetector } from '../../src/defenses/detection/index.js';
import { packageRoot } from '../../src/engine/paths.js';
import { loadClassifier } from '../../src/models/index.js';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const MLP = join(packageRoot(), 'models', 'fmnist-mlp');
const tmp = await tempDir('detect-save');
afterAll(() => tmp.cleanup());

describe('parry detect --save', () => {
  it('mahalanobis: saves the evaluated detector, calibrated on the held-out training examples', async () => {
    const dir = tmp.next();
    const args = ['--model', MLP, '--detector', 'mahalanobis', '--attacks', 'fgsm', '--no-joint'];
    const sizes = ['--n', '20', '--fit-n', '300', '--calibration-n', '100', '--fpr', '0.05'];
    const r = parry('detect', ...args, ...sizes, '--save', dir, '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.saved.dir).toBe(dir);
    expect(out.saved.threshold).toBe(out.threshold);
    const file = JSON.parse(readFileSync(join(dir, 'detector.json'), 'utf8'));
    expect(file).toMatchObject({
      format: 'parry-detector',
      version: 1,
      detector: 'mahalanobis',
      options: { seed: 0 },
      threshold: out.threshold,
      calibration: { fpr: 0.05 },
      provenance: { dataset: 'fashion-mnist-subset', fitExamples: 300, calibrationExamples: 100 },
    });
    expect(existsSync(join(dir, 'arrays.bin'))).toBe(true);
    const model = await loadClassifier(MLP);
    expect(file.model.contentHash).toBe(classifierHash(model));
    expect(out.saved.model_hash).toBe(classifierHash(model));
    // Training examples [300, 400) set the threshold: at 5% of 100, the 6th largest score.
    const { detector } = await loadDetector(dir, model);
    const cal = sliceDataset(loadDataset('fashion-mnist-subset', 'train', { seed: 0 }), 300, 400);
    const x = tf.tensor(cal.x, cal.shape);
    const scores = Array.from(detector.score(x)).sort((a, b) => b - a);
    expect(detector.threshold).toBe(scores[5]);
    tf.dispose(x);
    detector.dispose();
    model.dispose();
  });

  it('a supervised detector (learned): the saved one is the one evaluated', () => {
    const dir = tmp.next();
    const r = parry(
      'detect',
      ...['--model', MLP, '--detector', 'learned', '--attacks', 'fgsm,pgd', '--steps', '3'],
      ...['--n', '20', '--fit-n', '120', '--calibration-n', '60', '--batch-size', '32'],
      ...['--no-joint', '--save', dir, '--json'],
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.saved.threshold).toBe(out.threshold);
    const file = JSON.parse(readFileSync(join(dir, 'detector.json'), 'utf8'));
    expect(file.provenance.attacks).toEqual(['fgsm', 'pgd']);
    expect(Object.keys(file.arrays).sort()).toEqual([
      'mean',
      'params.0',
      'params.1',
      'params.2',
      'params.3',
      'std',
    ]);
  });

  it('bad --save: several detectors, a path under a file, a folder of other files (exit 2 at once)', () => {
    const file = join(tmp.root, 'a-file');
    writeFileSync(file, 'x');
    const other = join(tmp.root, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine');
    const base = ['detect', '--model', MLP, '--attacks', 'fgsm', '--json'];
    const started = performance.now();
    expectBadInput(
      parry(...base, '--detector', 'squeeze,mahalanobis', '--save', tmp.next()),
      /--save: give one detector, got 2 \(squeeze, mahalanobis\)/,
    );
    expectBadInput(
      parry(...base, '--detector', 'squeeze', '--save', join(file, 'det')),
      /--save .*a part of the path is a file, not a folder/,
    );
    expectBadInput(
      parry(...base, '--detector', 'squeeze', '--save', other),
      /--save .*other holds other files/,
    );
    // Refused before any fitting or attack.
    expect(performance.now() - started).toBeLessThan(30_000);
    expect(readFileSync(join(other, 'notes.txt'), 'utf8')).toBe('mine');
  });
});
