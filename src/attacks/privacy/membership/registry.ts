/**
 * The membership-inference attacks, as a plain list in the registry shape every family shares:
 * a strict schema of the options each reads (with defaults), what it needs (`requires`, and
 * `needs` for the parts of the input beyond the target's outputs) and one factory whose runner
 * maps a `MembershipInput` to scores. The target's membership enters only afterwards, in
 * `evaluateMembership`, so no attack can tune itself on the members it is judged on.
 */
import type { z } from 'zod';
import {
  type Capability,
  findEntry,
  parseEntryOptions,
  type TechniqueEntry,
} from '../../../options.js';
import { lira, liraSchema } from './lira.js';
import type { MembershipInput, MembershipScores } from './membership.js';
import { rmia, rmiaSchema } from './rmia.js';
import { type MembershipMetrics, membershipMetrics } from './roc.js';
import { shadowAttack, shadowSchema } from './shadow.js';
import { thresholdAttack, thresholdSchema } from './threshold.js';

/** Parts of the input an attack reads besides the target's outputs and the labels. */
export type MembershipNeed = 'references' | 'population';

/** Every membership attack, once its options are parsed. */
export type MembershipRunner = (input: MembershipInput) => MembershipScores;

export interface MembershipEntry<S extends z.ZodObject = z.ZodObject>
  extends TechniqueEntry<S, MembershipRunner> {
  readonly needs: readonly MembershipNeed[];
}

/** One attack's run, ready for JSON and for a ROC plot on log axes (`metrics.roc`). */
export interface MembershipResult {
  attack: string;
  /** The options the attack ran with, defaults filled in (the seed among them, where random). */
  options: Record<string, unknown>;
  /** Per candidate, higher = more likely a member (the order of the input's candidates). */
  scores: number[];
  /** Per candidate 1 = member, when the attack decides. */
  decisions?: number[];
  metrics: MembershipMetrics;
  details: Record<string, unknown>;
  warnings: string[];
  /** Wall-clock seconds of the attack (not of the metrics). */
  seconds: number;
}

function entry<S extends z.ZodObject>(e: MembershipEntry<S>): MembershipEntry {
  return e as unknown as MembershipEntry;
}

const fromReferences: readonly Capability[] = ['scores', 'training-data'];

export const MEMBERSHIP_ATTACKS: readonly MembershipEntry[] = [
  entry({
    name: 'loss',
    description:
      'loss threshold (Yeom et al. 2018): members have low cross-entropy; threshold chosen on reference models',
    schema: thresholdSchema,
    requires: fromReferences,
    needs: ['references'],
    create: (o) => (input) => thresholdAttack('loss', input, o),
  }),
  entry({
    name: 'confidence',
    description: 'confidence threshold: members get a high probability on their true class',
    schema: thresholdSchema,
    requires: fromReferences,
    needs: ['references'],
    create: (o) => (input) => thresholdAttack('confidence', input, o),
  }),
  entry({
    name: 'modified-entropy',
    description:
      'modified-entropy threshold (Song & Mittal 2021): low Mentr for members, optionally one threshold per class',
    schema: thresholdSchema,
    requires: fromReferences,
    needs: ['references'],
    create: (o) => (input) => thresholdAttack('modified-entropy', input, o),
  }),
  entry({
    name: 'shadow',
    description:
      'shadow models (Shokri et al. 2017): an attack classifier trained on reference models’ outputs labelled in/out',
    schema: shadowSchema,
    requires: fromReferences,
    needs: ['references'],
    create: (o) => (input) => shadowAttack(input, o),
  }),
  entry({
    name: 'lira',
    description:
      'LiRA (Carlini et al. 2022): per-example Gaussian fits of the logit-scaled confidence over IN/OUT reference models; online or offline',
    schema: liraSchema,
    requires: fromReferences,
    needs: ['references'],
    create: (o) => (input) => lira(input, o),
  }),
  entry({
    name: 'rmia',
    description:
      'RMIA (Zarifzadeh et al. 2024): pairwise likelihood ratios against population samples, with few reference models',
    schema: rmiaSchema,
    requires: fromReferences,
    needs: ['references', 'population'],
    create: (o) => (input) => rmia(input, o),
  }),
];

export function membershipAttackNames(): string[] {
  return MEMBERSHIP_ATTACKS.map((a) => a.name);
}

/**
 * How a run is named in tables and charts: the attack, and the options that differ from its
 * defaults (`lira:fixedVariance=true`), so two runs of one attack can be told apart. A name that
 * is not a membership attack (a label-only signal) is kept as it is.
 */
export function membershipLabel(attack: string, options: Record<string, unknown>): string {
  const e = MEMBERSHIP_ATTACKS.find((a) => a.name === attack);
  if (e === undefined) return attack;
  const defaults = e.schema.parse({}) as Record<string, unknown>;
  const changed = Object.entries(options).filter(
    ([k, v]) => JSON.stringify(v) !== JSON.stringify(defaults[k]),
  );
  return changed.length === 0
    ? attack
    : `${attack}:${changed.map(([k, v]) => `${k}=${v}`).join(',')}`;
}

/**
 * The result of scores `out` (from attack `attack` run with `options`) judged against the
 * target's membership `[i]` (1 = the target trained on candidate i).
 */
export function evaluateMembership(
  attack: string,
  options: Record<string, unknown>,
  out: MembershipScores,
  targetMembership: ArrayLike<number>,
  seconds = 0,
): MembershipResult {
  return {
    attack,
    options,
    scores: Array.from(out.scores),
    ...(out.decisions ? { decisions: Array.from(out.decisions) } : {}),
    metrics: membershipMetrics(out.scores, targetMembership, out.decisions),
    details: out.details,
    warnings: out.warnings,
    seconds,
  };
}

/**
 * Runs the attack called `name` on `input` (options checked against its schema: an option it
 * does not read is a BAD_OPTION naming both), then scores it against `targetMembership`.
 */
export function runMembership(
  name: string,
  options: Record<string, unknown>,
  input: MembershipInput,
  targetMembership: ArrayLike<number>,
): MembershipResult {
  const e = findEntry(MEMBERSHIP_ATTACKS, name, 'membership attack');
  const parsed = parseEntryOptions(e, options);
  const runner = e.create(parsed);
  const t0 = performance.now();
  const out = runner(input);
  const seconds = (performance.now() - t0) / 1000;
  return evaluateMembership(
    name,
    parsed as Record<string, unknown>,
    out,
    targetMembership,
    seconds,
  );
}
