/**
 * `parry train --defense pgd-at|fast-at|trades|mart|grad-reg|jacobian-reg`: training.json records
 * the method, its parameters, its cost and per-epoch clean/robust accuracy; early stopping and
 * the adaptive schedule are recorded; bad combinations exit 2 with one line naming the option.
 * Runs the compiled CLI (build first).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';

const root = packageRoot();

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

const outDir = (tag: string) => join(mkdtempSync(join(tmpdir(), `parry-${tag}-`)), 'm');
const data = ['--dataset', 'synthetic:8x8x1:3:256'];

describe('parry train, robust defenses', () => {
  it('pgd-at writes training.json with method, parameters, cost and per-epoch accuracies', () => {
    const out = outDir('pgd-at');
    const r = parry(
      'train',
      ...data,
      '--arch',
      'cnn-small',
      '--defense',
      'pgd-at',
      '--eps',
      '0.1',
      '--attack-steps',
      '2',
      '--epochs',
      '1',
      '--eval-steps',
      '3',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const saved = JSON.parse(readFileSync(join(out, 'training.json'), 'utf8'));
    expect(saved).toEqual(JSON.parse(r.stdout));
    expect(saved.defense).toBe('pgd-at');
    expect(saved['pgd-at']).toMatchObject({
      eps: 0.1,
      norm: 'linf',
      steps: 2,
      mix: 0,
      schedule: 'constant',
    });
    expect(saved['pgd-at'].method).toMatch(/Madry/);
    expect(saved.cost.gradient_evaluations_per_example).toBe(3); // 2 attack steps + 1 backward
    expect(saved.cost.seconds).toBeGreaterThan(0);
    expect(saved.per_epoch).toHaveLength(1);
    const e = saved.per_epoch[0];
    for (const k of ['clean_accuracy', 'robust_accuracy', 'eps', 'attack_steps'])
      expect(e[k]).toBeTypeOf('number');
    expect(e.robust_accuracy).toBeLessThanOrEqual(e.clean_accuracy);
    expect(r.stderr).toMatch(/robust_accuracy/);
  });

  it('trades with --val-split and an adaptive schedule records the eps sequence and the best epoch', () => {
    const out = outDir('trades');
    const r = parry(
      'train',
      ...data,
      '--arch',
      'mlp',
      '--defense',
      'trades',
      '--eps',
      '0.1',
      '--beta',
      '1',
      '--attack-steps',
      '2',
      '--epochs',
      '3',
      '--batch-size',
      '64',
      '--eval-steps',
      '3',
      '--schedule',
      'adaptive',
      '--val-split',
      '0.25',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const saved = JSON.parse(r.stdout);
    expect(saved.train_examples).toBe(192);
    expect(saved.trades).toMatchObject({ beta: 1, schedule: 'adaptive' });
    expect(saved.trades.eval.held_out).toMatch(/validation/);
    const eps = saved.per_epoch.map((e: { eps: number }) => e.eps);
    expect(eps[0]).toBeCloseTo(0.025, 10);
    saved.per_epoch.forEach((e: { next_eps: number }, i: number) => {
      if (i + 1 < eps.length) expect(eps[i + 1]).toBeCloseTo(e.next_eps, 10);
    });
    expect(saved.best_epoch).toBeGreaterThanOrEqual(1);
    expect(saved.weights_from_epoch).toBe(saved.best_epoch);
    expect(r.stderr).toMatch(/schedule: epoch 1 trained at eps 0.025/);
  });

  it('grad-reg on an mlp trains; on cnn-small it refuses the pooling layer by name', () => {
    const out = outDir('grad-reg');
    const ok = parry(
      'train',
      ...data,
      '--arch',
      'mlp',
      '--defense',
      'grad-reg',
      '--lambda',
      '0.1',
      '--epochs',
      '1',
      '--eval-steps',
      '2',
      '--out',
      out,
      '--json',
    );
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).cost.gradient_evaluations_per_example).toBe(3);
    expectBadInput(
      parry(
        'train',
        ...data,
        '--arch',
        'cnn-small',
        '--defense',
        'grad-reg',
        '--lambda',
        '0.1',
        '--epochs',
        '1',
        '--out',
        out,
      ),
      /'pool' \(MaxPooling2D\)/,
    );
  });

  it('fast-at with --eval-attack apgd-ce records the attack and checks every epoch with it', () => {
    const out = outDir('fast-at');
    const r = parry(
      'train',
      ...data,
      '--arch',
      'mlp',
      '--defense',
      'fast-at',
      '--eps',
      '0.1',
      '--epochs',
      '2',
      '--eval-attack',
      'apgd-ce',
      '--eval-steps',
      '3',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const saved = JSON.parse(r.stdout);
    expect(saved['fast-at'].eval).toMatchObject({ attack: 'apgd-ce', steps: 3, eps: 0.1 });
    expect(saved.per_epoch).toHaveLength(2);
    for (const e of saved.per_epoch) {
      expect(e.robust_accuracy).toBeLessThanOrEqual(e.clean_accuracy);
      expect(e.fgsm_accuracy).toBeTypeOf('number');
    }
  });

  // Each training method's schema reads its own options; any other is refused naming both.
  it('bad combinations exit 2 with one line naming the option', () => {
    const out = outDir('bad');
    const base = ['train', ...data, '--epochs', '1', '--out', out];
    expectBadInput(parry(...base, '--defense', 'pgd-at'), /pgd-at: --eps is required/);
    expectBadInput(parry(...base, '--defense', 'trades', '--eps', '0.1', '--beta', '-1'), /--beta/);
    expectBadInput(parry(...base, '--defense', 'grad-reg'), /--lambda is required/);
    expectBadInput(
      parry(...base, '--defense', 'pgd-at', '--eps', '0.1', '--lambda', '1'),
      /pgd-at: --lambda: unknown option: pgd-at does not read '--lambda'/,
    );
    expectBadInput(
      parry(...base, '--defense', 'pgd-at', '--eps', '0.1', '--schedule', 'adaptive'),
      /--val-split/,
    );
    expectBadInput(
      parry(...base, '--defense', 'fast-at', '--eps', '0.1', '--schedule', 'linear'),
      /fast-at: --schedule: unknown option/,
    );
    expectBadInput(
      parry(...base, '--defense', 'pgd-at', '--eps', '0.1', '--val-split', '1.5'),
      /--val-split: Too big/,
    );
    expectBadInput(parry(...base, '--beta', '1'), /none does not read '--beta'/);
    expectBadInput(
      parry(...base, '--defense', 'pgd-at', '--eps', '0.1', '--fast-noise', '2'),
      /pgd-at does not read '--fast-noise'/,
    );
    expectBadInput(parry(...base, '--no-fast-project'), /none does not read '--fast-project'/);
    expectBadInput(parry(...base, '--defense', 'pgd-at', '--eps', '0.1', '--norm', 'l7'), /--norm/);
    expectBadInput(
      parry(...base, '--defense', 'pgd-at', '--eps', '0.1', '--eval-attack', 'cw'),
      /--eval-attack/,
    );
    expectBadInput(
      parry(...base, '--eval-attack', 'apgd-ce'),
      /none does not read '--eval-attack'/,
    );
  });
});
