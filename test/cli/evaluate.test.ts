/**
 * `parry evaluate` end to end: in this process (so tensor counts can be checked) on a tiny config,
 * writing results.json and report.html with one JSON object on stdout; and through the compiled
 * CLI (`npm run build` first) for --example and the exit status of bad configs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import YAML from 'yaml';
import { main } from '../../src/cli/main.js';
import { packageRoot } from '../../src/engine/paths.js';
import { parseEvaluateConfig } from '../../src/evaluate/config.js';
import type { EvaluationResults } from '../../src/evaluate/results.js';

const root = packageRoot();

function parry(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(root, 'bin', 'parry.mjs'), ...args], {
    encoding: 'utf8',
    cwd: root,
    env: { ...process.env, PARRY_BACKEND: 'wasm' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeConfig(config: unknown, name = 'eval.json'): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'parry-cli-evaluate-'));
  const file = path.join(dir, name);
  writeFileSync(file, name.endsWith('.json') ? JSON.stringify(config) : YAML.stringify(config));
  return file;
}

/** Runs `parry ...` in this process, capturing stdout and stderr. */
async function parryHere(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => out.push(String(s)) > 0);
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => err.push(String(s)) > 0);
  const code = await main(args);
  vi.restoreAllMocks();
  return { code, stdout: out.join(''), stderr: err.join('') };
}

afterEach(() => vi.restoreAllMocks());

describe('parry evaluate', () => {
  it('writes results.json and report.html, prints one JSON object, and leaks no tensors', async () => {
    const file = writeConfig(
      {
        n: 8,
        batchSize: 4,
        models: [{ path: path.join(root, 'models', 'fmnist-mlp') }],
        attacks: [{ attack: 'fgsm' }, { attack: 'pgd', params: { steps: 2 } }],
        eps: { linf: [0.05, 0.1] },
        gallery: { examples: 1 },
        explain: { methods: ['gradient'] },
        honesty: { examples: 4, unboundedSteps: 3, moreSteps: { factor: 1, restarts: 1 } },
      },
      'eval.yaml',
    );
    const out = path.join(path.dirname(file), 'out');
    const before = tf.memory().numTensors;
    const r = await parryHere(
      'evaluate',
      '--config',
      file,
      '--out',
      out,
      '--workers',
      '1',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({
      command: 'evaluate',
      n: 8,
      report: path.join(out, 'report.html'),
      results: path.join(out, 'results.json'),
    });
    expect(Object.keys(summary.targets[0].worst_case)).toEqual(['linf:0.05', 'linf:0.1']);
    expect(r.stderr).toContain(`report: ${path.join(out, 'report.html')}`);
    expect(r.stderr).toMatch(/target\s+clean\s+linf:0\.05\s+linf:0\.1/);
    const results = JSON.parse(
      readFileSync(path.join(out, 'results.json'), 'utf8'),
    ) as EvaluationResults;
    expect(results.targets[0].worstCase[1].robustAccuracy).toBe(
      summary.targets[0].worst_case['linf:0.1'],
    );
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toMatch(/^<!doctype html>/i);
    expect(existsSync(path.join(out, 'partial.jsonl'))).toBe(false);
  });

  it('--example prints a config that validates', () => {
    const r = parry('evaluate', '--example');
    expect(r.code, r.stderr).toBe(0);
    const c = parseEvaluateConfig(YAML.parse(r.stdout), root);
    expect(c.attacks.map((a) => a.attack)).toEqual(['fgsm', 'pgd', 'square']);
  });

  it('exits 2 with one line naming the path of a bad config value', () => {
    const file = writeConfig({ models: [{ path: 'm' }], attacks: [{ attack: 'pgd', parms: {} }] });
    const r = parry('evaluate', '--config', file, '--out', path.join(path.dirname(file), 'out'));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/attacks\[0\]\.parms: unknown key/);
    const missing = parry('evaluate', '--out', '/tmp/x');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--config FILE is required/);
  });

  it('exits 2 naming the model when a model directory does not load', () => {
    const file = writeConfig({ models: [{ path: 'no-such-model' }] });
    const r = parry('evaluate', '--config', file, '--out', path.join(path.dirname(file), 'out'));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/models\[0\]\.path: .*no-such-model/);
  });
});
