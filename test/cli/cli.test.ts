/**
 * The command-line contract: `--json` prints exactly one JSON object on stdout, progress goes to
 * stderr, exit 0 on success, 2 on bad input or options (one line, no stack trace), 1 on internal
 * errors. Runs the compiled CLI (`npm test` builds first).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalQuantile } from '../../src/certify/stats.js';
import { packageRoot } from '../../src/engine/paths.js';

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
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

function copyModel(dir: string): string {
  const out = mkdtempSync(join(tmpdir(), 'parry-cli-'));
  for (const f of ['model.json', 'group1-shard1of1.bin']) copyFileSync(join(dir, f), join(out, f));
  return out;
}

describe('parry CLI', () => {
  it('info --json prints one JSON object describing the model', () => {
    const r = parry('info', '--model', MLP, '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(out.inputShape).toEqual([28, 28, 1]);
    expect(out.numClasses).toBe(10);
    expect(out.params).toBe(784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10);
    expect(out.seed).toBe(0);
  });

  it('predict --json reports accuracy and predictions, with the seed', () => {
    const r = parry(
      'predict',
      '--model',
      MLP,
      '--dataset',
      'fashion-mnist-subset',
      '--n',
      '200',
      '--json',
      '--seed',
      '7',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.n).toBe(200);
    expect(out.seed).toBe(7);
    expect(out.predictions).toHaveLength(200);
    expect(out.accuracy).toBeGreaterThan(0.8);
    const correct = out.predictions.filter((p: number, i: number) => p === out.labels[i]).length;
    expect(out.accuracy).toBeCloseTo(correct / 200, 10);
  });

  it('predict gives the same answer in-process and across two workers', () => {
    const one = JSON.parse(
      parry('predict', '--model', MLP, '--n', '300', '--workers', '1', '--json').stdout,
    );
    const two = JSON.parse(
      parry('predict', '--model', MLP, '--n', '300', '--workers', '2', '--json').stdout,
    );
    expect(two.workers).toBe(2);
    expect(two.predictions).toEqual(one.predictions);
  });

  it('train writes a model directory and training.json, and learns a synthetic task', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'parry-train-')), 'm');
    const r = parry(
      'train',
      '--dataset',
      'synthetic:8x8x1:3:300',
      '--arch',
      'mlp',
      '--epochs',
      '3',
      '--batch-size',
      '32',
      '--seed',
      '3',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    const saved = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8'));
    expect(saved).toEqual(summary);
    expect(summary.seed).toBe(3);
    expect(summary.per_epoch).toHaveLength(3);
    expect(summary.test_accuracy).toBeGreaterThan(0.9);
    expect(r.stderr).toMatch(/epoch 3/);
    const info = JSON.parse(parry('info', '--model', out, '--json').stdout);
    expect(info.inputShape).toEqual([8, 8, 1]);
  });

  it('train --defense ibp records the schedule and IBP-certified test accuracy', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'parry-train-ibp-')), 'm');
    const common = ['train', '--dataset', 'synthetic:6x6x1:3:300', '--arch', 'mlp'];
    const r = parry(
      ...common,
      '--epochs',
      '4',
      '--batch-size',
      '30',
      '--defense',
      'ibp',
      '--eps',
      '0.11',
      '--certify-eps',
      '0.1',
      '--ibp-warmup',
      '0.25',
      '--ibp-ramp',
      '0.5',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const saved = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8'));
    expect(saved).toEqual(JSON.parse(r.stdout));
    expect(saved.defense).toBe('ibp');
    expect(saved.workers).toBe(1);
    expect(saved.ibp).toMatchObject({ eps: 0.11, warmup: 0.25, ramp: 0.5, kappa_end: 0.5 });
    expect(saved.ibp.certify_eps).toBe(0.1);
    const epochs = saved.per_epoch;
    // The schedule at each epoch's last step (10 steps an epoch): t = 9/40, 19/40, 29/40, 39/40.
    const ramp = [0, 0.45, 0.95, 1];
    epochs.forEach((e: { eps: number; kappa: number }, i: number) => {
      expect(e.eps).toBeCloseTo(0.11 * ramp[i], 10);
      expect(e.kappa).toBeCloseTo(1 - 0.5 * ramp[i], 10);
    });
    for (const e of epochs) expect(e.test_ibp_certified).toBeGreaterThanOrEqual(0);
    expect(saved.stored_test_ibp_certified_accuracy).toBe(epochs[3].test_ibp_certified);
    expectBadInput(parry(...common, '--defense', 'ibp', '--out', out), /--eps is required/);
    expectBadInput(
      parry(...common, '--defense', 'ibp', '--eps', '0.1', '--ibp-ramp', '0.95', '--out', out),
      /--ibp-warmup \+ --ibp-ramp/,
    );
    expectBadInput(parry(...common, '--defense', 'pgd', '--out', out), /--defense/);
  });

  it('attack --json reports accuracy, success and cost, and saves example PNGs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parry-attack-'));
    const common = ['attack', '--model', MLP, '--n', '40', '--steps', '5', '--json'];
    const clean = JSON.parse(parry(...common, '--eps', '0').stdout);
    const r = parry(
      ...common,
      '--eps',
      '0.1',
      '--save-examples',
      dir,
      '--examples',
      '3',
      '--seed',
      '5',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    for (const key of [
      'attack',
      'norm',
      'eps',
      'n',
      'seed',
      'clean_accuracy',
      'robust_accuracy',
      'attack_success_rate',
      'mean_perturbation',
      'max_perturbation',
      'gradient_evaluations',
      'queries',
      'seconds',
    ]) {
      expect(out, key).toHaveProperty(key);
    }
    expect(out.attack).toBe('pgd');
    expect(out.seed).toBe(5);
    expect(clean.robust_accuracy).toBe(clean.clean_accuracy);
    expect(out.clean_accuracy).toBe(clean.clean_accuracy);
    expect(out.robust_accuracy).toBeLessThan(clean.robust_accuracy);
    expect(out.max_perturbation).toBeLessThanOrEqual(0.1 + 1e-6);
    expect(out.gradient_evaluations).toBe(40 * 5);
    const index = JSON.parse(readFileSync(join(dir, 'examples.json'), 'utf8'));
    expect(index).toHaveLength(3);
    const png = readFileSync(join(dir, index[0].file));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expectBadInput(parry('attack', '--model', MLP, '--attack', 'fgsm', '--norm', 'l1'), /fgsm.*l1/);
    expectBadInput(parry('attack', '--model', MLP, '--attack', 'nope'), /nope/);
  });

  it('attack --offset splits an evaluation: two halves add up to the whole', () => {
    const run = (...extra: string[]) => {
      const r = parry('attack', '--model', MLP, '--attack', 'fgsm', '--json', ...extra);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const whole = run('--n', '40');
    const first = run('--n', '25');
    const tail = run('--n', '15', '--offset', '25');
    expect(whole.offset).toBe(0);
    expect(tail.offset).toBe(25);
    expect(tail.n).toBe(15);
    const count = (r: { n: number; robust_accuracy: number }) =>
      Math.round(r.n * r.robust_accuracy);
    const clean = (r: { n: number; clean_accuracy: number }) => Math.round(r.n * r.clean_accuracy);
    expect(count(first) + count(tail)).toBe(count(whole));
    expect(clean(first) + clean(tail)).toBe(clean(whole));
    expectBadInput(parry('attack', '--model', MLP, '--offset', '1000'), /--offset 1000.*has 1000/);
    expectBadInput(parry('attack', '--model', MLP, '--offset', '-1'), /offset/);
  });

  it('attack --attack hsj reports queries and the median of a minimum-norm attack', () => {
    const r = parry(
      'attack',
      '--model',
      MLP,
      '--attack',
      'hsj',
      '--norm',
      'l2',
      '--max-queries',
      '300',
      '--n',
      '3',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.attack).toBe('hsj');
    expect(out.eps).toBeNull();
    expect(out.gradient_evaluations).toBe(0);
    expect(out.queries).toBeGreaterThan(0);
    expect(out.queries).toBeLessThanOrEqual(3 * 300);
    expect(out.median_perturbation).toBeGreaterThan(0);
    expectBadInput(parry('attack', '--model', MLP, '--attack', 'hsj', '--norm', 'l1'), /hsj.*l1/);
  });

  it('certify --method smoothing reports a certified-accuracy curve', () => {
    const r = parry(
      'certify',
      '--model',
      MLP,
      '--sigma',
      '0.12',
      '--n0',
      '20',
      '--n',
      '200',
      '--n-examples',
      '4',
      '--per-example',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.method).toBe('smoothing');
    expect(out.forward_passes).toBe(4 * 220);
    expect(out.certified_accuracy.map((c: { radius: number }) => c.radius)).toEqual([
      0, 0.25, 0.5, 0.75, 1,
    ]);
    const acc = out.certified_accuracy.map((c: { accuracy: number }) => c.accuracy);
    for (let i = 1; i < acc.length; i++) expect(acc[i]).toBeLessThanOrEqual(acc[i - 1]);
    for (const e of out.per_example) {
      if (e.prediction === -1) expect(e.radius).toBe(0);
      else expect(e.radius).toBeCloseTo(0.12 * normalQuantile(e.pALower), 6);
    }
    expectBadInput(parry('certify', '--model', MLP), /--sigma/);
  });

  it('certify --method ibp|crown reports certified accuracy at eps, crown beside ibp', () => {
    const run = (method: string) => {
      const r = parry(
        'certify',
        '--model',
        MLP,
        '--method',
        method,
        '--eps',
        '0.01',
        '--n-examples',
        '20',
        '--per-example',
        '--json',
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      return JSON.parse(r.stdout);
    };
    const ibp = run('ibp');
    const crown = run('crown');
    for (const out of [ibp, crown]) {
      expect(out.eps).toBe(0.01);
      expect(out.n).toBe(20);
      expect(out.seed).toBe(0);
      expect(out.seconds).toBeGreaterThan(0);
      expect(out.clean_accuracy).toBeGreaterThan(0.5);
      expect(typeof out.certified_accuracy).toBe('number');
      expect(out.certified_accuracy).toBeLessThanOrEqual(out.clean_accuracy);
      expect(out.per_example).toHaveLength(20);
      const certified = out.per_example.filter((e: { certified: boolean }) => e.certified);
      expect(certified.length / 20).toBeCloseTo(out.certified_accuracy, 10);
      for (const e of certified) {
        expect(e.prediction).toBe(e.label);
        expect(e.margin_lower).toBeGreaterThan(0);
      }
    }
    expect(ibp.method).toBe('ibp');
    expect(ibp.forward_passes).toBe(40);
    expect(ibp.ibp_certified_accuracy).toBeUndefined();
    expect(crown.method).toBe('crown');
    expect(crown.ibp_certified_accuracy).toBe(ibp.certified_accuracy);
    expect(crown.certified_accuracy).toBeGreaterThanOrEqual(crown.ibp_certified_accuracy);
    expect(crown.forward_passes).toBeGreaterThan(ibp.forward_passes);
    expectBadInput(parry('certify', '--model', MLP, '--method', 'crown'), /--eps is required/);
    expectBadInput(parry('certify', '--model', MLP, '--method', 'ibp', '--eps', '-1'), /--eps/);
  });

  it('help and version exit 0', () => {
    expect(parry('--help').code).toBe(0);
    expect(parry('train', '--help').code).toBe(0);
    expect(parry('--version').stdout.trim()).toBe('0.1.0');
  });

  it('exits 2 with one line on an unknown option or a bad value', () => {
    expectBadInput(parry('info', '--model', MLP, '--bogus'), /unknown option '--bogus'/);
    expectBadInput(parry('predict', '--model', MLP, '--n', '-3'), /--n/);
    expectBadInput(parry('train', '--out', '/tmp/x', '--epochs', 'many'), /positive integer/);
    expectBadInput(parry('nonsense'), /unknown command/);
    expectBadInput(
      parry('predict', '--model', MLP, '--dataset', 'imagenet'),
      /unknown data set|imagenet/,
    );
    expectBadInput(parry('predict', '--model', MLP, '--backend', 'tpu'), /backend.*tpu/);
  });

  it('exits 2 for a model directory without weights or with a short shard', () => {
    const noWeights = copyModel(MLP);
    const missing = mkdtempSync(join(tmpdir(), 'parry-cli-'));
    copyFileSync(join(noWeights, 'model.json'), join(missing, 'model.json'));
    expectBadInput(parry('info', '--model', missing), /group1-shard1of1\.bin/);
    truncateSync(join(noWeights, 'group1-shard1of1.bin'), 1000);
    expectBadInput(parry('info', '--model', noWeights), /group1-shard1of1\.bin.*(bytes|length)/);
    expectBadInput(
      parry('info', '--model', join(tmpdir(), 'no-such-model-dir')),
      /no-such-model-dir/,
    );
  });

  it('exits 2 for a data file with a wrong magic number', () => {
    const dir = mkdtempSync(join(tmpdir(), 'parry-mnist-'));
    const subset = join(root, 'data', 'fashion-mnist-subset');
    for (const f of [
      't10k-images-idx3-ubyte.gz',
      't10k-labels-idx1-ubyte.gz',
      'train-images-idx3-ubyte.gz',
      'train-labels-idx1-ubyte.gz',
    ]) {
      copyFileSync(join(subset, f), join(dir, f));
    }
    writeFileSync(join(dir, 't10k-images-idx3-ubyte.gz'), Buffer.from([0, 0, 9, 9, 0, 0, 0, 0]));
    expectBadInput(
      parry('predict', '--model', MLP, '--dataset', `mnist:${dir}`),
      /t10k-images-idx3-ubyte\.gz.*magic/,
    );
  });

  it('exits 2 when the data does not match the model input shape', () => {
    expectBadInput(
      parry('predict', '--model', MLP, '--dataset', 'synthetic:32x32x3:10:20'),
      /shape.*\[28, ?28, ?1\]/,
    );
  });
});
