/**
 * Values past what the machine can hold are refused as bad input (exit 2, one line) instead of
 * starting hundreds of threads or dying in an allocation.
 */
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
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
