/**
 * Values past what the machine can hold are refused as bad input (exit 2, one line) instead of
 * starting hundreds of threads or dying in an allocation.
 */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { checkDataFits } from '../../src/models/data-fit.js';
import { caught } from '../models/tmp.js';
import { expectBadInput, parry } from './helpers.js';

describe('limits', () => {
  it('--workers above 4 per core is refused at once', () => {
    const cap = 4 * availableParallelism();
    const started = performance.now();
    const r = parry(
      'attack',
      '--model',
      'models/fmnist-mlp',
      '--attack',
      'fgsm',
      '--n',
      '8',
      '--workers',
      String(cap + 1),
      '--json',
    );
    expectBadInput(r, new RegExp(`workers ${cap + 1} is more than 4 per core .*at most ${cap}`));
    expect(performance.now() - started).toBeLessThan(20_000);
  });

  it('an --n the data set cannot give is refused, not cut silently (a default --n is cut)', () => {
    expectBadInput(
      parry('attack', '--model', 'models/fmnist-mlp', '--attack', 'fgsm', '--n', '5000', '--json'),
      /--n 5000 runs past the end of fashion-mnist-subset\/test: it has 1000 examples/,
    );
    expectBadInput(
      parry(
        'attack',
        '--model',
        'models/fmnist-mlp',
        '--attack',
        'fgsm',
        '--n',
        '10',
        '--offset',
        '995',
        '--json',
      ),
      /--n 10 runs past the end .*\(--offset 995\)/,
    );
    expectBadInput(
      parry('predict', '--model', 'models/fmnist-mlp', '--n', '1001', '--json'),
      /--n 1001 is more than the 1000 examples of fashion-mnist-subset\/test/,
    );
    expectBadInput(
      parry(
        'defend',
        '--model',
        'models/fmnist-mlp',
        '--preprocess',
        'squeeze-bits:bits=4',
        '--n',
        '2000',
        '--json',
      ),
      /--n 2000 is more than the 1000 examples/,
    );
    const r = parry(
      'attack',
      '--model',
      'models/fmnist-mlp',
      '--attack',
      'fgsm',
      '--offset',
      '990',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).n).toBe(10);
  });

  it('a data set with labels the model has no class for is refused', () => {
    for (const command of [['predict'], ['attack', '--attack', 'fgsm']]) {
      expectBadInput(
        parry(
          ...command,
          '--model',
          'models/fmnist-mlp',
          '--dataset',
          'synthetic:28x28x1:12:60',
          '--json',
        ),
        /synthetic.*: label 11 \(example \d+\) is not a class of the model, which has 10/,
      );
    }
  });

  it('checkDataFits: shape, emptiness and labels', async () => {
    const model = { inputShape: [2, 2, 1], numClasses: 3 };
    const set = (shape: number[], labels: number[]) => ({ name: 'd', shape, labels });
    expect(() => checkDataFits(model, set([2, 2, 2, 1], [0, 2]))).not.toThrow();
    for (const [data, pattern] of [
      [
        set([1, 2, 3, 1], [0]),
        /examples of shape \[2, 3, 1\] do not fit the model's input \[2, 2, 1\]/,
      ],
      [set([0, 2, 2, 1], []), /d has no examples/],
      [set([2, 2, 2, 1], [0, 3]), /label 3 \(example 1\) is not a class of the model, which has 3/],
    ] as const) {
      const e = await caught(() => checkDataFits(model, data));
      expect(e.code).toBe('BAD_INPUT');
      expect(e.message).toMatch(pattern);
    }
  });

  it('one rule for a detector false-positive rate: the CLI refuses 0 and 1 like the config', () => {
    for (const fpr of ['0', '1']) {
      expectBadInput(
        parry(
          'detect',
          '--model',
          'models/fmnist-mlp',
          '--detector',
          'mahalanobis',
          '--fpr',
          fpr,
          '--json',
        ),
        new RegExp(`--fpr .*must be a false-positive rate strictly between 0 and 1, got '${fpr}'`),
      );
    }
  });

  it('a flag and its --no- form together are refused', () => {
    expectBadInput(
      parry(
        'attack',
        '--model',
        'models/fmnist-mlp',
        '--random-start',
        '--no-random-start',
        '--json',
      ),
      /^parry: --random-start and --no-random-start contradict each other$/,
    );
  });

  it('a synthetic data set too large to allocate is refused', () => {
    expectBadInput(
      parry(
        'predict',
        '--model',
        'models/fmnist-mlp',
        '--dataset',
        'synthetic:100000x100000x3:10',
        '--json',
      ),
      /numClasses 10 × 100000x100000x3 = .* exceeds 268435456/,
    );
  });
});
