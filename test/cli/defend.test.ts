/**
 * `parry defend` and `parry train-denoiser` through the compiled CLI (`npm run build` first):
 * one JSON object with the documented fields, exit 2 with one line on a bad spec.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { syntheticDataset } from '../../src/data/index.js';
import {
  buildPreprocessors,
  loadDenoiser,
  reconstruct,
} from '../../src/defenses/preprocess/index.js';
import { packageRoot } from '../../src/engine/paths.js';
import { Rng } from '../../src/engine/rng.js';

const root = packageRoot();
const MLP = join(root, 'models', 'fmnist-mlp');

function parry(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'parry.mjs'), ...args], {
    encoding: 'utf8',
    cwd: root,
    env: { ...process.env, PARRY_BACKEND: 'wasm' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function expectBadInput(r: ReturnType<typeof parry>, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const lines = r.stderr.trim().split('\n');
  expect(lines.length, r.stderr).toBe(1);
  expect(lines[0]).toMatch(pattern);
}

describe('parry defend', () => {
  it('reports clean accuracy before/after and non-adaptive vs BPDA robust accuracy', () => {
    const args = ['defend', '--model', MLP, '--n', '20', '--steps', '5', '--json'];
    const r = parry(...args, '--preprocess', 'jpeg:q=75,squeeze-bits:bits=4');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      command: 'defend',
      attack: 'pgd',
      adaptive: 'bpda',
      n: 20,
      seed: 0,
      eps: 0.1,
    });
    expect(out.steps.map((s: { name: string }) => s.name)).toEqual(['jpeg', 'squeeze-bits']);
    for (const k of [
      'clean_accuracy_undefended',
      'clean_accuracy_defended',
      'robust_accuracy_non_adaptive',
      'robust_accuracy_adaptive',
      'robust_accuracy_worst_case',
    ]) {
      expect(out[k], k).toBeGreaterThanOrEqual(0);
      expect(out[k], k).toBeLessThanOrEqual(1);
    }
    expect(out.clean_accuracy_undefended).toBeGreaterThan(0.5);
    // The non-adaptive attack sees zero gradients; BPDA sees through.
    expect(out.robust_accuracy_adaptive).toBeLessThan(out.robust_accuracy_non_adaptive);
    expect(out.robust_accuracy_worst_case).toBeLessThanOrEqual(out.robust_accuracy_adaptive);
  });

  it('eot on a randomised defense, and none runs only the non-adaptive attack', () => {
    const base = ['defend', '--model', MLP, '--n', '8', '--steps', '2', '--json'];
    const eot = parry(
      ...base,
      '--preprocess',
      'noise:sigma=0.05',
      '--adaptive',
      'eot',
      '--eot-samples',
      '2',
    );
    expect(eot.code, eot.stderr).toBe(0);
    const e = JSON.parse(eot.stdout);
    expect(e.eot_samples).toBe(2);
    expect(e.steps[0]).toMatchObject({ name: 'noise', randomized: true, differentiable: true });
    expect(Object.keys(e.gradient_evaluations)).toEqual(['non-adaptive', 'eot']);
    const none = parry(...base, '--preprocess', 'median:k=3', '--adaptive', 'none');
    expect(none.code, none.stderr).toBe(0);
    const n = JSON.parse(none.stdout);
    expect(n.robust_accuracy_adaptive).toBeNull();
    expect(n.warnings.join(' ')).toMatch(/mask gradients/);
  });

  it.each([
    ['jpeg:q=0', /jpeg: q/],
    ['blur:k=3', /unknown step 'blur'/],
    ['median:size=3', /median: .*size/i],
    ['squeeze-bits:bits=four', /squeeze-bits: bits/],
  ])('bad spec %s: exit 2, one line', (spec, pattern) => {
    expectBadInput(parry('defend', '--model', MLP, '--preprocess', spec, '--json'), pattern);
  });
});

describe('parry train-denoiser', () => {
  it('writes a loadable model that reconstructs noisy inputs better than the noise', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'parry-ae-')), 'ae');
    const r = parry(
      'train-denoiser',
      '--dataset',
      'synthetic:8x8x1:3:64',
      '--epochs',
      '2',
      '--noise-sigma',
      '0.2',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.test_mse_reconstructed).toBeLessThan(summary.test_mse_noisy);
    // Independently, in this process: noisy test inputs from another seed.
    const model = await loadDenoiser(out);
    const test = syntheticDataset({
      shape: [8, 8, 1],
      numClasses: 3,
      n: 64,
      seed: 0,
      split: 'test',
    });
    const rng = new Rng(99);
    const noisy = Float32Array.from(test.x, (v) =>
      Math.min(1, Math.max(0, v + 0.2 * rng.normal())),
    );
    const [noiseMse, recMse] = tf.tidy(() => {
      const clean = tf.tensor4d(test.x, [64, 8, 8, 1]);
      const input = tf.tensor4d(noisy, [64, 8, 8, 1]);
      return [
        tf.mean(tf.squaredDifference(input, clean)).dataSync()[0],
        tf.mean(tf.squaredDifference(reconstruct(model, input, [0, 1]), clean)).dataSync()[0],
      ];
    });
    expect(recMse).toBeLessThan(noiseMse);
    model.dispose();
    // As a preprocessor: shape and bounds kept.
    const [magnet] = await buildPreprocessors(`magnet:model=${out}`);
    const x = tf.tensor4d(noisy, [64, 8, 8, 1]);
    const y = magnet.apply(x, [0, 1]);
    expect(y.shape).toEqual([64, 8, 8, 1]);
    const v = y.dataSync();
    expect(Math.min(...v)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...v)).toBeLessThanOrEqual(1);
    tf.dispose([x, y]);
  });
});
