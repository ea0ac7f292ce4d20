/**
 * An evaluation never mixes runs: a resume after a model changed under the same path is refused
 * naming it; a corrupt partial file is called corrupt; one run per output folder (a live second
 * run refused naming the first, a dead run's lock taken over) — in the library and through the
 * real CLI, with the first run killed by SIGKILL.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/engine/paths.js';
import { parseEvaluateConfig } from '../../src/evaluate/config.js';
import { LOCK_FILE, lockOutDir } from '../../src/evaluate/out-lock.js';
import { runEvaluation } from '../../src/evaluate/run.js';
import { caught, tempDir } from '../models/tmp.js';

const root = packageRoot();
const tmp = await tempDir('resume-safety');
afterAll(() => tmp.cleanup());

const model = path.join(tmp.root, 'mlp');
cpSync(path.join(root, 'models', 'fmnist-mlp'), model, { recursive: true });
const raw = {
  n: 12,
  batchSize: 6,
  seed: 1,
  models: [{ path: model }],
  attacks: [{ attack: 'fgsm' }, { attack: 'pgd', params: { steps: 2 } }],
  eps: { linf: [0.05, 0.1] },
  honesty: { enabled: false },
  gallery: { examples: 0 },
};

/** Runs until `stages` stages have started, then aborts; the partial file stays. */
async function interrupted(dir: string, stages: number) {
  const config = parseEvaluateConfig(raw, root);
  const controller = new AbortController();
  let started = 0;
  await runEvaluation(config, {
    outDir: dir,
    signal: controller.signal,
    onStage: () => {
      if (++started === stages) controller.abort(new Error('stop'));
      return undefined;
    },
  }).catch(() => undefined);
  expect(existsSync(path.join(dir, 'partial.jsonl'))).toBe(true);
  return config;
}

describe('resume', () => {
  it('is refused, naming the model, when the model changed under the same path', async () => {
    const dir = path.join(tmp.root, 'changed');
    const config = await interrupted(dir, 3);
    const shard = path.join(model, 'group1-shard1of1.bin');
    const bytes = readFileSync(shard);
    const changed = Buffer.from(bytes);
    changed.writeFloatLE(0.25, 0);
    writeFileSync(shard, changed);
    const e = await caught(() => runEvaluation(config, { outDir: dir, resume: true }));
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toMatch(
      new RegExp(`cannot resume .*: model ${model} changed since the interrupted run`),
    );
    // Put it back: the resume goes through.
    writeFileSync(shard, bytes);
    const r = await runEvaluation(config, { outDir: dir, resume: true });
    expect(r.targets).toHaveLength(1);
  }, 120_000);

  it('calls a corrupt partial file corrupt', async () => {
    const dir = path.join(tmp.root, 'corrupt');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'partial.jsonl'), 'not json\n');
    const e = await caught(() =>
      runEvaluation(parseEvaluateConfig(raw, root), { outDir: dir, resume: true }),
    );
    expect(e.code).toBe('BAD_FILE');
    expect(e.message).toMatch(/partial.jsonl is not a partial-results file/);
  });
});

describe('the output folder lock', () => {
  it('refuses a second holder while the first lives, and takes over a dead or released one', async () => {
    const dir = path.join(tmp.root, 'lock');
    mkdirSync(dir);
    const release = lockOutDir(dir);
    const e = await caught(() => lockOutDir(dir));
    expect(e.code).toBe('BAD_OPTION');
    expect(e.message).toMatch(new RegExp(`in use by another run \\(pid ${process.pid} on `));
    release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    lockOutDir(dir)();
    // A lock left by a process that is gone (pid of an exited child) is stale.
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    const lock = path.join(dir, LOCK_FILE);
    writeFileSync(lock, JSON.stringify({ pid: gone, host: hostname(), started: 'earlier' }));
    lockOutDir(dir)();
    // One on another host cannot be checked: refused, saying how to clear it.
    writeFileSync(lock, JSON.stringify({ pid: 1, host: 'elsewhere', started: 'earlier' }));
    expect((await caught(() => lockOutDir(dir))).message).toMatch(
      /pid 1 on elsewhere.*remove .*parry-lock if that run is gone/,
    );
  });

  it('through the CLI: a second evaluate into a live run is refused; after kill -9 the resume runs', async () => {
    const dir = path.join(tmp.root, 'cli');
    const configFile = path.join(tmp.root, 'config.json');
    // Long enough (seconds on tfjs) that the second run meets the first still running.
    const attacks = [{ attack: 'pgd', params: { steps: 4000 } }];
    writeFileSync(configFile, JSON.stringify({ ...raw, eps: { linf: [0.1] }, attacks }));
    const args = [
      path.join(root, 'bin', 'parry.mjs'),
      'evaluate',
      '--config',
      configFile,
      '--out',
      dir,
      '--workers',
      '1',
      '--engine',
      'tfjs',
    ];
    const first = spawn(process.execPath, [...args, '--json'], { cwd: root, stdio: 'ignore' });
    const lock = path.join(dir, LOCK_FILE);
    for (let i = 0; i < 600 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(lock)).toBe(true);
    const second = spawnSync(process.execPath, [...args, '--resume', '--json'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(second.status).toBe(2);
    expect(second.stdout).toBe('');
    expect(second.stderr.trim()).toMatch(
      new RegExp(`^parry: evaluate: .* is in use by another run \\(pid ${first.pid} on `),
    );
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const third = spawnSync(process.execPath, [...args, '--resume', '--json'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(third.status, third.stderr).toBe(0);
    expect(JSON.parse(third.stdout).command).toBe('evaluate');
    expect(existsSync(lock)).toBe(false);
  }, 120_000);
});
