/**
 * Every attack in the registry, on every norm it supports, runs from the CLI on both committed
 * reference models with a tiny budget and honours the JSON contract. Runs the compiled CLI.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ATTACKS } from '../../src/attacks/registry.js';
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

describe('parry attack, every attack on both reference models', () => {
  for (const model of ['fmnist-mlp', 'fmnist-cnn-small']) {
    for (const attack of ATTACKS) {
      // One norm per attack on the CNN keeps the run short; the MLP gets every norm.
      const norms = model === 'fmnist-mlp' ? attack.norms : attack.norms.slice(0, 1);
      for (const norm of norms) {
        it(`${model}: ${attack.name} (${norm})`, () => {
          const eps = norm === 'linf' ? '0.1' : norm === 'l2' ? '1.5' : '10';
          // A tiny budget, through the options this attack reads (it refuses the others).
          const reads = (key: string) => key in attack.schema.shape;
          const budget = [
            ...(reads('eps') ? ['--eps', eps] : []),
            ...(reads('steps') ? ['--steps', '2'] : []),
            ...(reads('deepfoolSteps') ? ['--deepfool-steps', '2'] : []),
            ...(reads('maxQueries') ? ['--max-queries', '30'] : []),
          ];
          const r = parry(
            'attack',
            '--model',
            join(root, 'models', model),
            '--attack',
            attack.name,
            '--norm',
            norm,
            ...budget,
            '--n',
            '4',
            '--fit-examples',
            '8',
            '--workers',
            '1',
            '--json',
          );
          expect(r.code, r.stderr).toBe(0);
          const out = JSON.parse(r.stdout);
          expect(out.attack).toBe(attack.name);
          expect(out.n).toBe(4);
          expect(out.robust_accuracy).toBeLessThanOrEqual(out.clean_accuracy);
          if (attack.minimumNorm) {
            expect(out.eps).toBeNull();
            expect(out).toHaveProperty('median_perturbation');
          } else {
            expect(out.eps).toBe(Number(eps));
            if (out.attack_success_rate > 0) {
              expect(out.max_perturbation).toBeLessThanOrEqual(Number(eps) * (1 + 1e-6));
            }
          }
          // uap's cost is its fit (applying the perturbation is free).
          const cost = out.gradient_evaluations + out.queries + (out.fit_gradient_evaluations ?? 0);
          expect(cost).toBeGreaterThan(0);
        });
      }
    }
  }
});
