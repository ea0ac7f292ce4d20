/** `parry detect`: JSON contract and exit codes. Runs the compiled CLI (`npm run build` first). */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { expectBadInput, parry } from './helpers.js';

const root = packageRoot();
const MLP = join(root, 'models', 'fmnist-mlp');

describe('parry detect', () => {
  it('mahalanobis vs fgsm prints one JSON object with auc and tpr per attack', () => {
    const r = parry(
      'detect',
      '--model',
      MLP,
      '--detector',
      'mahalanobis',
      '--attacks',
      'fgsm',
      '--n',
      '40',
      '--fit-n',
      '400',
      '--calibration-n',
      '40',
      '--joint-steps',
      '5',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const out = JSON.parse(r.stdout);
    expect(out.command).toBe('detect');
    expect(out.detector).toBe('mahalanobis');
    expect(out.n).toBe(40);
    expect(out.seed).toBe(0);
    expect(Number.isFinite(out.threshold)).toBe(true);
    // Calibrated at 5% on 40 held-out examples: at most 2 flagged there.
    expect(out.clean_fpr).toBeGreaterThanOrEqual(0);
    expect(Object.keys(out.attacks)).toEqual(['fgsm']);
    for (const entry of [out.attacks.fgsm, out.joint]) {
      expect(entry.auc).toBeGreaterThanOrEqual(0);
      expect(entry.auc).toBeLessThanOrEqual(1);
      expect(entry.tpr).toBeGreaterThanOrEqual(0);
      expect(entry.tpr).toBeLessThanOrEqual(1);
      expect(entry.robust_accuracy_with_detector).toBeGreaterThanOrEqual(entry.robust_accuracy);
    }
  });

  it('several detectors score the same crafted examples: each report equals its single run', () => {
    const common = ['--model', MLP, '--attacks', 'fgsm', '--n', '40', '--fit-n', '400'];
    const calibrate = ['--calibration-n', '40'];
    const opts = [...common, ...calibrate, '--joint-steps', '5', '--json'];
    const both = parry('detect', '--detector', 'squeeze,mahalanobis', ...opts);
    expect(both.code, both.stderr).toBe(0);
    const out = JSON.parse(both.stdout);
    expect(out.detectors.map((d: { detector: string }) => d.detector)).toEqual([
      'squeeze',
      'mahalanobis',
    ]);
    expect(out.n).toBe(40);
    const single = JSON.parse(parry('detect', '--detector', 'mahalanobis', ...opts).stdout);
    const multi = out.detectors[1];
    expect(multi.threshold).toBe(single.threshold);
    expect(multi.attacks).toEqual(single.attacks);
    expect(multi.joint).toEqual(single.joint);
    expect(out.clean_accuracy).toBe(single.clean_accuracy);
  });

  it('crafts the same examples over a worker pool as in this thread', () => {
    // Batches of 8: the attacks' test and training examples span several batches, so the default
    // run spreads them over the workers; --workers 1 crafts them here.
    const opts = ['--model', MLP, '--detector', 'lid', '--attacks', 'fgsm,pgd', '--steps', '3'];
    const more = ['--n', '24', '--fit-n', '120', '--calibration-n', '40', '--batch-size', '8'];
    const args = [...opts, ...more, '--joint-steps', '3', '--json'];
    const runs = ['2', '1'].map((w) => parry('detect', ...args, '--workers', w));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    const [pooled, local] = runs.map((r) => {
      const { seconds: _s, detector_seconds: _d, ...rest } = JSON.parse(r.stdout);
      return rest;
    });
    expect(pooled).toEqual(local);
    expect(local.attacks.pgd.success_rate).toBeGreaterThan(0);
  });

  it('a detector listed twice or unknown in a list exits 2 with one line', () => {
    expectBadInput(
      parry('detect', '--model', MLP, '--detector', 'lid,lid', '--json'),
      /listed twice/,
    );
    expectBadInput(
      parry('detect', '--model', MLP, '--detector', 'lid,zap', '--json'),
      /unknown detector 'zap'/,
    );
  });

  it('a bad detector name exits 2 with one line', () => {
    expectBadInput(parry('detect', '--model', MLP, '--detector', 'nope', '--json'), /detector/);
  });

  it('an unknown attack exits 2 with one line', () => {
    expectBadInput(
      parry('detect', '--model', MLP, '--detector', 'squeeze', '--attacks', 'fgsm,zap', '--json'),
      /unknown attack 'zap'/,
    );
  });

  it('calibrates on the training examples after the fitting ones, and says when there are too few', () => {
    const args = ['--model', MLP, '--detector', 'mahalanobis', '--attacks', 'fgsm', '--no-joint'];
    const r = parry(
      'detect',
      ...args,
      '--n',
      '20',
      '--fit-n',
      '300',
      '--calibration-n',
      '50',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect([out.fit_n, out.calibration_n, out.n]).toEqual([300, 50, 20]);
    // The bundled subset has 2,000 training examples.
    expectBadInput(
      parry('detect', ...args, '--fit-n', '1500', '--calibration-n', '600', '--json'),
      /2000 examples, fewer than the 1500 fitting \+ 600 calibration examples/,
    );
  });
});
