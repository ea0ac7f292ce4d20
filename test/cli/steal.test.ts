/**
 * `parry steal` through the real CLI, kept tiny (an MLP victim, tens of queries, one epoch): the
 * thief and steal.json are written and agree with stdout, a curve runs one thief per budget, a
 * label-only victim gives hard targets and finite bandit rewards, a pool of another data set is
 * queried, and bad input — a budget of 0 or below, the scoring split as pool, a pool of another
 * shape — is one line, exit 2.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

const tmp = await tempDir('cli-steal');
afterAll(() => tmp.cleanup());

const tiny = ['--victim', 'models/fmnist-mlp', '--arch', 'mlp', '--epochs', '1', '--n', '24'];
const tinyTransfer = ['--transfer-steps', '2'];

describe('parry steal', () => {
  it('writes the thief and steal.json (copycat, a curve of two budgets)', () => {
    const out = tmp.next();
    const r = parry(
      'steal',
      ...tiny,
      ...tinyTransfer,
      '--method',
      'copycat',
      '--budget',
      '20,48',
      '--seed',
      '3',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    const saved = JSON.parse(readFileSync(path.join(out, 'steal.json'), 'utf8'));
    // stdout adds the engine the victim ran on; the rest is steal.json.
    const { engine: _engine, ...record } = printed;
    expect(saved).toEqual(record);
    expect(printed).toMatchObject({
      command: 'steal',
      method: 'copycat',
      victim_output: 'scores',
      pool: 'fashion-mnist-subset',
      pool_split: 'train',
      seed: 3,
      thief_budget: 48,
    });
    expect(printed.results.map((x: { budget: number }) => x.budget)).toEqual([20, 48]);
    for (const res of printed.results) {
      expect(res.queries_used).toBe(res.budget);
      expect(res.test_examples).toBe(24);
      expect(res.targets).toBe('hard');
      for (const m of ['accuracy', 'agreement', 'victim_accuracy']) {
        expect(res[m]).toBeGreaterThanOrEqual(0);
        expect(res[m]).toBeLessThanOrEqual(1);
      }
    }
    expect(existsSync(path.join(out, 'model.json'))).toBe(true);
    const model = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8'));
    expect(model.userDefinedMetadata.parry).toMatchObject({
      arch: 'mlp',
      bounds: [0, 1],
      stolenFrom: 'models/fmnist-mlp',
    });
    // The thief answers like any model: predict reads it back.
    const p = parry('predict', '--model', out, '--n', '8', '--json');
    expect(p.code, p.stderr).toBe(0);
    expect(JSON.parse(p.stdout).n).toBe(8);
  });

  it('queries a pool of another data set (non-problem domain); refuses one of another shape', () => {
    const out = tmp.next();
    const pool = 'synthetic:28x28x1:10:100';
    const r = parry(
      'steal',
      ...tiny,
      ...tinyTransfer,
      '--method',
      'copycat',
      '--budget',
      '30',
      '--pool',
      pool,
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed).toMatchObject({ pool, pool_split: 'train' });
    expect(printed.results[0]).toMatchObject({ queries_used: 30, test_examples: 24 });
    expectBadInput(
      parry(
        'steal',
        ...tiny,
        '--method',
        'copycat',
        '--budget',
        '30',
        '--pool',
        'synthetic:32x32x3:10:100',
        '--out',
        tmp.next(),
      ),
      /^parry: steal: the pool synthetic:32x32x3:10:100 has examples of shape \[32, 32, 3\], the victim takes \[28, 28, 1\]$/,
    );
  });

  it('adaptive knockoff against a label-only victim: hard targets, finite rewards, budget kept', () => {
    const out = tmp.next();
    const r = parry(
      'steal',
      ...tiny,
      ...tinyTransfer,
      '--method',
      'knockoff',
      '--policy',
      'adaptive',
      '--round-size',
      '8',
      '--victim-output',
      'labels',
      '--budget',
      '40',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const [res] = JSON.parse(r.stdout).results;
    expect(res).toMatchObject({
      method: 'knockoff',
      budget: 40,
      queries_used: 40,
      targets: 'hard',
    });
    expect(res.details.nonFiniteRewards).toBe(0);
    expect(Number.isFinite(res.details.meanReward)).toBe(true);
    expect(res.details.pulls.reduce((a: number, b: number) => a + b, 0)).toBe(40);
  });

  it('steals through an output defence: a labels-only chain leaves hard targets, and is recorded', () => {
    const out = tmp.next();
    const r = parry(
      'steal',
      ...tiny,
      ...tinyTransfer,
      '--method',
      'knockoff',
      '--output',
      'labels-only',
      '--budget',
      '24',
      '--out',
      out,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const printed = JSON.parse(r.stdout);
    expect(printed.output_defense).toBe('labels-only');
    expect(printed.results[0]).toMatchObject({ queries_used: 24, targets: 'hard' });
    expectBadInput(
      parry(
        'steal',
        ...tiny,
        '--method',
        'copycat',
        '--output',
        'labels-only',
        '--victim-output',
        'labels',
        '--budget',
        '8',
        '--out',
        tmp.next(),
      ),
      /--output defends the probabilities/,
    );
    expectBadInput(
      parry(
        'steal',
        ...tiny,
        '--method',
        'copycat',
        '--output',
        'no-such',
        '--budget',
        '8',
        '--out',
        tmp.next(),
      ),
      /no-such/,
    );
  });

  it('refuses a budget of 0 or below with one line, exit 2', () => {
    for (const budget of ['0', '-5', '10,0']) {
      const r = parry(
        'steal',
        ...tiny,
        '--method',
        'jacobian',
        '--budget',
        budget,
        '--out',
        tmp.next(),
      );
      expectBadInput(r, new RegExp(`--budget.*'${budget}'.*must be a positive integer`));
    }
  });

  it('refuses the scoring split as pool unless allowed, and options the method does not read', () => {
    expectBadInput(
      parry(
        'steal',
        ...tiny,
        '--method',
        'copycat',
        '--budget',
        '5',
        '--pool-split',
        'test',
        '--out',
        tmp.next(),
      ),
      /^parry: steal: the pool would be the test split of fashion-mnist-subset.*--allow-test-pool$/,
    );
    expectBadInput(
      parry(
        'steal',
        ...tiny,
        '--method',
        'copycat',
        '--budget',
        '5',
        '--policy',
        'adaptive',
        '--out',
        tmp.next(),
      ),
      /^parry: copycat: --policy: unknown option: copycat does not read '--policy'/,
    );
  });
});
