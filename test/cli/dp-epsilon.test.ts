/**
 * `parry dp-epsilon`: prints TF Privacy's tutorial ε (2.92 for σ 1.12, q 256/60000, 60 epochs,
 * δ 1e-5) with --json, and exits 2 with one line naming the option on bad input (δ ≥ 1, δ ≤ 0,
 * σ ≤ 0, q outside (0, 1], steps < 1, both or neither of --steps/--epochs). Runs the compiled CLI
 * (build first).
 */
import { describe, expect, it } from 'vitest';
import { expectBadInput, parry } from './helpers.js';

const tutorial = ['--noise-multiplier', '1.12', '--sample-rate', String(256 / 60000)];

describe('parry dp-epsilon', () => {
  it("prints TF Privacy's tutorial value, 2.92, with --json", () => {
    for (const count of [
      ['--epochs', '60'],
      ['--steps', '14063'],
    ]) {
      const r = parry('dp-epsilon', ...tutorial, ...count, '--delta', '1e-5', '--json');
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const out = JSON.parse(lines[0]);
      expect(out.command).toBe('dp-epsilon');
      expect(out.steps).toBe(14063); // ⌈60·60000/256⌉
      expect(Math.abs(out.epsilon - 2.92)).toBeLessThanOrEqual(0.01);
      expect(out.epsilon_balle).toBeLessThan(out.epsilon);
      expect(out).toMatchObject({ noise_multiplier: 1.12, delta: 1e-5, orders: 'default' });
      expect(out.order_at_edge).toBe(false);
    }
    const human = parry('dp-epsilon', ...tutorial, '--epochs', '60', '--delta', '1e-5');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/ε = 2\.92 at δ = 0\.00001/);
    expect(human.stdout).toMatch(/Balle et al\. 2020/);
  });

  it('takes its own orders and flags an optimum at the edge of the grid', () => {
    const r = parry(
      'dp-epsilon',
      ...tutorial,
      '--steps',
      '14063',
      '--delta',
      '1e-5',
      '--orders',
      '2,3',
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.orders).toEqual([2, 3]);
    expect(out.order).toBe(3);
    expect(out.order_at_edge).toBe(true);
  });

  it('exits 2 with one line naming the option on bad input', () => {
    const ok = { sigma: '1.1', q: '0.01', steps: '100', delta: '1e-5' };
    const run = (o: Partial<typeof ok>) => {
      const a = { ...ok, ...o };
      return parry(
        'dp-epsilon',
        `--noise-multiplier=${a.sigma}`,
        `--sample-rate=${a.q}`,
        `--steps=${a.steps}`,
        `--delta=${a.delta}`,
      );
    };
    expectBadInput(run({ delta: '1' }), /--delta.*must be in \(0, 1\), got '1'/);
    expectBadInput(run({ delta: '2' }), /--delta/);
    expectBadInput(run({ delta: '0' }), /--delta/);
    expectBadInput(run({ sigma: '0' }), /--noise-multiplier.*positive number, got '0'/);
    expectBadInput(run({ sigma: '-1' }), /--noise-multiplier/);
    expectBadInput(run({ q: '1.5' }), /--sample-rate.*\(0, 1\]/);
    expectBadInput(run({ q: '0' }), /--sample-rate/);
    expectBadInput(run({ steps: '0' }), /--steps.*positive integer/);
    expectBadInput(
      parry('dp-epsilon', ...tutorial, '--steps', '10', '--epochs', '1', '--delta', '1e-5'),
      /exactly one of --steps and --epochs/,
    );
    expectBadInput(
      parry('dp-epsilon', ...tutorial, '--delta', '1e-5'),
      /exactly one of --steps and --epochs/,
    );
    expectBadInput(parry('dp-epsilon', ...tutorial, '--steps', '10'), /--delta/);
  });
});
