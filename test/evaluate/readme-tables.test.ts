/**
 * The README's headline numbers, reproduced to the digit from the same seeds: the FGSM row and
 * the non-zero PGD-20 cells of the robustness table of `models/fmnist-cnn-small` (first 1,000
 * bundled test images, seed 0, batches of 128 as `npm run bench -- table` runs them), and the IBP
 * row of `models/fmnist-mlp-ibp` (82.1% clean, 66.2% IBP-certified at L∞ eps 0.1).
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type AttackParams, findAttack } from '../../src/attacks/registry.js';
import { certifyDataset, fraction } from '../../src/certify/bound-certificates.js';
import { loadDataset, takeFirst } from '../../src/data/index.js';
import { packageRoot } from '../../src/engine/paths.js';
import { WorkerPool } from '../../src/engine/pool.js';
import { predictDataset } from '../../src/evaluate/predictions.js';
import { evaluateAttackPooled } from '../../src/evaluate/robustness.js';
import { loadClassifier } from '../../src/models/index.js';

const data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 1000);
const cnn = path.join(packageRoot(), 'models', 'fmnist-cnn-small');
const pool = new WorkerPool({ workers: 2 });
afterAll(() => pool.close());

const percent = (v: number) => (100 * v).toFixed(1);

async function robust(attack: string, params: AttackParams): Promise<string> {
  // 10 classes; batches of 128, the default, as the benchmark runs them.
  const r = await evaluateAttackPooled(pool, cnn, 10, data, findAttack(attack)!, params);
  return percent(r.robustAccuracy);
}

describe('README tables', () => {
  it('FGSM row: 29.8 / 7.7 / 1.3 at L∞ 0.05 / 0.1 / 0.2, 29.3 / 8.1 at L2 1 / 2', async () => {
    const cells = [
      ['linf', 0.05, '29.8'],
      ['linf', 0.1, '7.7'],
      ['linf', 0.2, '1.3'],
      ['l2', 1, '29.3'],
      ['l2', 2, '8.1'],
    ] as const;
    for (const [norm, eps, expected] of cells) {
      expect(await robust('fgsm', { norm, eps, targeted: false, seed: 0 }), `${norm} ${eps}`).toBe(
        expected,
      );
    }
  });

  it('PGD-20 row: 8.0 at L∞ 0.05 and 2.1 at L2 1 (0.0 elsewhere)', async () => {
    const params = { targeted: false, seed: 0, steps: 20 };
    expect(await robust('pgd', { ...params, norm: 'linf', eps: 0.05 })).toBe('8.0');
    expect(await robust('pgd', { ...params, norm: 'l2', eps: 1 })).toBe('2.1');
  }, 400_000); // 40,000 example-gradients: minutes on 2 busy cores

  it('IBP row: fmnist-mlp-ibp 82.1% clean, 66.2% IBP-certified at L∞ eps 0.1', async () => {
    const model = await loadClassifier(path.join(packageRoot(), 'models', 'fmnist-mlp-ibp'));
    expect(percent((await predictDataset(model, data)).accuracy)).toBe('82.1');
    const r = await certifyDataset(model, data, { method: 'ibp', eps: 0.1 });
    expect(percent(fraction(r.certified))).toBe('66.2');
    model.dispose();
  });
});
