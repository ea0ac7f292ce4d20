import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  evaluateMembership,
  MEMBERSHIP_ATTACKS,
  membershipAttackNames,
  membershipLabel,
  runMembership,
} from '../../../../src/attacks/privacy/membership/registry.js';
import { membershipMetrics } from '../../../../src/attacks/privacy/membership/roc.js';
import { synthetic } from './synthetic.js';

describe('membership registry', () => {
  it('lists each attack once, every option described and defaulted', () => {
    expect(membershipAttackNames()).toEqual([
      'loss',
      'confidence',
      'modified-entropy',
      'shadow',
      'lira',
      'rmia',
    ]);
    for (const e of MEMBERSHIP_ATTACKS) {
      expect(e.description.length).toBeGreaterThan(20);
      for (const [key, field] of Object.entries(e.schema.shape)) {
        expect((field as z.ZodType).description, `${e.name}.${key}`).toBeTruthy();
        expect(field, `${e.name}.${key}`).toBeInstanceOf(z.ZodDefault);
      }
      expect(e.requires).toContain('scores');
    }
  });

  it('runs every attack into one JSON-ready result, the target membership used only to score', () => {
    const s = synthetic({
      ...{ n: 300, references: 4, queries: 2, population: 100, seed: 21 },
      balanced: true,
    });
    for (const name of membershipAttackNames()) {
      const options = name === 'shadow' ? { epochs: 10 } : {};
      const r = runMembership(name, options, s.input, s.targetMembership);
      expect(r.attack).toBe(name);
      expect(r.scores).toHaveLength(300);
      expect(r.metrics.auc, name).toBeGreaterThan(0.7);
      expect(r.metrics.roc.fpr.length).toBe(r.metrics.roc.tpr.length);
      expect(Object.keys(r.metrics.tprAt)).toEqual(['0.001', '0.01']);
      expect(r.seconds).toBeGreaterThanOrEqual(0);
      expect(JSON.parse(JSON.stringify(r))).toEqual(r);
      // Defaults filled in: the options recorded are the ones the attack ran with.
      const entry = MEMBERSHIP_ATTACKS.find((e) => e.name === name)!;
      expect(r.options).toEqual(entry.schema.parse(options));
      // The metrics are those of the scores against the membership, computed independently.
      expect(r.metrics).toEqual(membershipMetrics(r.scores, s.targetMembership, r.decisions));
      expect(r.decisions !== undefined).toBe(
        ['loss', 'confidence', 'modified-entropy', 'shadow', 'lira'].includes(name),
      );
    }
  });

  it('refuses unknown attacks, unknown options and bad values, naming them', () => {
    const s = synthetic({ n: 20, references: 2 });
    expect(() => runMembership('nope', {}, s.input, s.targetMembership)).toThrow(
      /unknown membership attack 'nope' \(known: loss, confidence, modified-entropy, shadow, lira, rmia\)/,
    );
    expect(() => runMembership('lira', { gamma: 2 }, s.input, s.targetMembership)).toThrow(
      /lira: gamma: unknown option: lira does not read 'gamma'/,
    );
    expect(() => runMembership('rmia', { a: 1.5 }, s.input, s.targetMembership)).toThrow(
      /rmia: a: /,
    );
    expect(() => runMembership('loss', {}, s.input, [1, 0])).toThrow(/20 scores but 2 labels/);
  });

  it('labels a run by the options that differ from the defaults', () => {
    expect(membershipLabel('lira', { mode: 'online', fixedVariance: false, minStd: 1e-3 })).toBe(
      'lira',
    );
    expect(membershipLabel('lira', { mode: 'offline', fixedVariance: true })).toBe(
      'lira:mode=offline,fixedVariance=true',
    );
    expect(membershipLabel('label-only-noise', { sigma: 0.2 })).toBe('label-only-noise');
  });

  it('evaluateMembership keeps the attack’s details and warnings', () => {
    const r = evaluateMembership(
      'x',
      { k: 1 },
      { scores: Float64Array.of(1, 0), details: { t: 2 }, warnings: ['w'] },
      [1, 0],
      1.5,
    );
    expect(r).toMatchObject({ attack: 'x', options: { k: 1 }, details: { t: 2 }, warnings: ['w'] });
    expect(r.metrics.auc).toBe(1);
    expect(r.seconds).toBe(1.5);
  });
});
