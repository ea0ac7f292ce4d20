import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ParryError } from '../../src/errors.js';
import { hashApiKey, loadGuardConfig, parseGuardConfig } from '../../src/serve/guard-config.js';

const refused = (raw: unknown): ParryError => {
  try {
    parseGuardConfig(raw, '/base', 'g.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ParryError);
    expect((e as ParryError).code).toBe('BAD_OPTION');
    return e as ParryError;
  }
  throw new Error('expected the guard file to be refused');
};

const digest = (key: string) => createHash('sha256').update(key).digest('hex');

describe('guard.yaml schema', () => {
  it('fills in defaults from an empty file', () => {
    const c = parseGuardConfig(null);
    expect(c.guards.apiKeys).toEqual([]);
    expect(c.guards.quota).toEqual({ rate: 50, burst: 256, perDay: 100_000 });
    expect(c.guards.input).toEqual({ maxBatch: 64, maxBodyBytes: 4 * 1024 * 1024 });
    expect(c.batching).toEqual({ maxBatch: 32, maxWaitMs: 2, wait: 'busy' });
    expect(c.audit.path).toBeUndefined();
    expect(c.audit.includeInputs).toBe(false);
    expect(c.seed).toBeUndefined();
  });

  it('names the path and the value of a bad number', () => {
    const e = refused({ guards: { quota: { perDay: -3 } } });
    expect(e.message).toBe(
      'guard: g.yaml: guards.quota.perDay: expected a positive integer, got -3',
    );
    expect(e.issues).toEqual([
      { path: ['guards', 'quota', 'perDay'], message: 'expected a positive integer, got -3' },
    ]);
    expect(refused({ guards: { quota: { perDay: 2.5 } } }).message).toMatch(
      /guards\.quota\.perDay: expected a positive integer, got 2\.5/,
    );
    expect(refused({ guards: { quota: { rate: 'fast' } } }).message).toMatch(
      /guards\.quota\.rate: expected a positive number, got "fast"/,
    );
  });

  it('refuses unknown keys at their own path, and every problem at once', () => {
    const e = refused({ guards: { qouta: {}, input: { maxBatch: 0 } }, extra: 1 });
    const paths = e.issues.map((i) => i.path.join('.'));
    expect(paths).toContain('guards.qouta');
    expect(paths).toContain('extra');
    expect(paths).toContain('guards.input.maxBatch');
    expect(e.message).toMatch(/guards\.qouta: unknown key/);
  });

  it('checks API keys: ids, digests, duplicates', () => {
    const ok = parseGuardConfig({ guards: { apiKeys: [{ id: 'alice', sha256: digest('a') }] } });
    expect(ok.guards.apiKeys).toEqual([{ id: 'alice', sha256: digest('a') }]);
    expect(refused({ guards: { apiKeys: [{ id: 'alice', sha256: 'secret' }] } }).message).toMatch(
      /guards\.apiKeys\[0\]\.sha256: expected 64 lowercase hex digits/,
    );
    expect(refused({ guards: { apiKeys: [{ id: 'a b', sha256: digest('a') }] } }).message).toMatch(
      /guards\.apiKeys\[0\]\.id: expected 1 to 64 letters/,
    );
    const twice = refused({
      guards: {
        apiKeys: [
          { id: 'a', sha256: digest('x') },
          { id: 'a', sha256: digest('x') },
        ],
      },
    });
    expect(twice.message).toMatch(/guards\.apiKeys\[1\]\.id: 'a' is given twice/);
    expect(twice.message).toMatch(/guards\.apiKeys\[1\]\.sha256: the same key is given twice/);
  });

  it('refuses a burst smaller than a full request, and smoothing with an output chain', () => {
    expect(refused({ guards: { quota: { burst: 10 }, input: { maxBatch: 64 } } }).message).toMatch(
      /guards\.quota\.burst: must be >= guards\.input\.maxBatch \(64\)/,
    );
    expect(
      refused({ guards: { smoothing: { sigma: 0.25 }, output: 'top-k:k=2' } }).message,
    ).toMatch(/guards\.output: cannot be combined with guards\.smoothing/);
    expect(refused({ guards: { smoothing: { n: 10 } } }).message).toMatch(
      /guards\.smoothing\.sigma: expected a positive number, got nothing/,
    );
  });

  it('checks preprocessing and output chains through their registries', () => {
    expect(refused({ guards: { preprocess: 'squeeze-bits:bits=99' } }).message).toMatch(
      /guards\.preprocess: .*squeeze-bits.*bits/,
    );
    expect(refused({ guards: { preprocess: 'blur' } }).message).toMatch(
      /guards\.preprocess: preprocess: unknown step 'blur'/,
    );
    expect(refused({ guards: { output: 'top-k:q=2' } }).message).toMatch(
      /guards\.output: .*top-k does not read 'q'/,
    );
    const c = parseGuardConfig({
      guards: { preprocess: 'squeeze-bits:bits=4', output: 'top-k:k=2' },
    });
    expect(c.guards.preprocess).toBe('squeeze-bits:bits=4');
  });

  it('takes the extraction monitor section with defaults and checks its action', () => {
    const c = parseGuardConfig({ guards: { extractionMonitor: { method: 'prada' } } });
    expect(c.guards.extractionMonitor).toEqual({
      method: 'prada',
      delta: 0.9,
      minQueries: 100,
      onAlarm: 'flag',
      throttleSeconds: 60,
      maxStored: 1000,
      maxDistances: 5000,
      maxKeys: 100,
    });
    expect(
      refused({ guards: { extractionMonitor: { method: 'prada', maxDistances: 6000 } } }).message,
    ).toMatch(/guards\.extractionMonitor\.maxDistances: expected a positive integer up to 5000/);
    expect(
      refused({
        guards: { extractionMonitor: { method: 'prada', minQueries: 200, maxDistances: 150 } },
      }).message,
    ).toMatch(
      /guards\.extractionMonitor\.minQueries: must be in \[3, maxDistances = 150\].*got 200/,
    );
    expect(
      refused({ guards: { extractionMonitor: { method: 'prada', onAlarm: 'ban' } } }).message,
    ).toMatch(
      /guards\.extractionMonitor\.onAlarm: expected 'flag', 'throttle' or 'block', got "ban"/,
    );
    expect(
      refused({ guards: { extractionMonitor: { method: 'prada', delta: 1 } } }).message,
    ).toMatch(
      /guards\.extractionMonitor\.delta: expected a number strictly between 0 and 1, got 1/,
    );
    expect(refused({ batching: { wait: 'never' } }).message).toMatch(
      /batching\.wait: expected 'busy' or 'always', got "never"/,
    );
  });

  it('resolves relative paths against the guard file folder', () => {
    const c = parseGuardConfig(
      { audit: { path: 'logs/audit.log' }, guards: { preprocess: 'denoiser:model=ae' } },
      '/srv/guards',
    );
    expect(c.audit.path).toBe(path.resolve('/srv/guards/logs/audit.log'));
    expect(c.guards.preprocess).toBe(`denoiser:model=${path.resolve('/srv/guards/ae')}`);
  });

  it('loads YAML files and names the file in errors', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'parry-guard-'));
    const good = path.join(dir, 'guard.yaml');
    writeFileSync(good, 'seed: 7\nguards:\n  quota:\n    perDay: 500\naudit:\n  path: a.log\n');
    const c = loadGuardConfig(good);
    expect(c.seed).toBe(7);
    expect(c.guards.quota.perDay).toBe(500);
    expect(c.audit.path).toBe(path.join(dir, 'a.log'));
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'guards:\n  quota:\n    perDay: -1\n');
    expect(() => loadGuardConfig(bad)).toThrow(
      `guard: ${bad}: guards.quota.perDay: expected a positive integer, got -1`,
    );
    const broken = path.join(dir, 'broken.yaml');
    writeFileSync(broken, 'guards: [unclosed\n');
    expect(() => loadGuardConfig(broken)).toThrow(/is not valid YAML/);
    expect(() => loadGuardConfig(path.join(dir, 'missing.yaml'))).toThrow(/cannot read/);
  });

  it('hashes API keys as sha256 hex of their UTF-8 bytes', () => {
    // FIPS 180-2 test vector: sha256("abc").
    expect(hashApiKey('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});
