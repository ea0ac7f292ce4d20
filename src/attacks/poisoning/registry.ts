/**
 * The poisoning attacks, as a plain list. Every entry has one strict schema — the poison rate,
 * the seed and the attack's own options, with defaults — what it needs from a reference model
 * (`requires`) and what the caller must hand it (`needs`), and one factory whose runner returns a
 * `PoisonResult`: the poisoned copy of the training set and its manifest. The CLI's options and
 * the evaluate config's params can be generated from these schemas, as for the evasion attacks;
 * an option an attack does not read is refused, naming both.
 */
import type { z } from 'zod';
import type { Dataset } from '../../data/dataset.js';
import { findEntry, parseEntryOptions, type TechniqueEntry } from '../../options.js';
import { badnets, badnetsSchema, blended, blendedSchema } from './backdoor.js';
import { cleanLabel, cleanLabelSchema } from './clean-label.js';
import { featureCollision, featureCollisionSchema } from './feature-collision.js';
import { gradientMatching, gradientMatchingSchema } from './gradient-matching.js';
import {
  adversarialFlip,
  adversarialFlipSchema,
  pairFlip,
  pairFlipSchema,
  randomFlip,
  randomFlipSchema,
} from './label-flipping.js';
import type { PoisonResult } from './poison-manifest.js';
import type { PoisonContext } from './selection.js';

/** What a caller hands a runner besides the training set: a reference model, a test set. */
export type PoisonInput = 'model' | 'test-set';

/** Every poisoning attack, once its options are parsed: a training set in, a PoisonResult out. */
export type PoisonRunner = (data: Dataset, ctx: PoisonContext) => Promise<PoisonResult>;

export interface PoisonEntry<S extends z.ZodObject = z.ZodObject>
  extends TechniqueEntry<S, PoisonRunner> {
  /** What `ctx` must carry: 'model' (the reference model), 'test-set' (target images' source). */
  readonly needs: readonly PoisonInput[];
  /** Whether poisoned examples keep their labels (clean-label attacks). */
  readonly cleanLabel: boolean;
}

function entry<S extends z.ZodObject>(e: PoisonEntry<S>): PoisonEntry {
  return e as unknown as PoisonEntry;
}

export const POISON_ATTACKS: readonly PoisonEntry[] = [
  entry({
    name: 'label-flip',
    description: 'random label flipping: each poisoned example gets a uniformly drawn other class',
    schema: randomFlipSchema,
    requires: [],
    needs: [],
    cleanLabel: false,
    create: (o) => async (data) => randomFlip(data, o),
  }),
  entry({
    name: 'label-flip-pair',
    description: 'class-pair label flipping: a fraction of the source class relabelled as target',
    schema: pairFlipSchema,
    requires: [],
    needs: [],
    cleanLabel: false,
    create: (o) => async (data) => pairFlip(data, o),
  }),
  entry({
    name: 'label-flip-adversarial',
    description:
      'adversarial label flipping: the examples a reference model is most sure of, relabelled with its second choice',
    schema: adversarialFlipSchema,
    requires: ['scores'],
    needs: ['model'],
    cleanLabel: false,
    create: (o) => (data, ctx) => adversarialFlip(data, o, ctx),
  }),
  entry({
    name: 'badnets',
    description: 'BadNets (Gu et al. 2017): patch trigger, all-to-one or all-to-all relabelling',
    schema: badnetsSchema,
    requires: [],
    needs: [],
    cleanLabel: false,
    create: (o) => async (data, ctx) => badnets(data, o, ctx),
  }),
  entry({
    name: 'blended',
    description: 'Blended injection (Chen et al. 2017): x′ = (1 − α)x + α·pattern, all-to-one',
    schema: blendedSchema,
    requires: [],
    needs: [],
    cleanLabel: false,
    create: (o) => async (data, ctx) => blended(data, o, ctx),
  }),
  entry({
    name: 'clean-label',
    description:
      'clean-label backdoor (Turner et al. 2019): target-class images made hard by PGD, then triggered; labels kept',
    schema: cleanLabelSchema,
    requires: ['gradients'],
    needs: ['model'],
    cleanLabel: true,
    create: (o) => (data, ctx) => cleanLabel(data, o, ctx),
  }),
  entry({
    name: 'feature-collision',
    description:
      'feature collision (Shafahi et al. 2018, Poison Frogs): base-class poisons colliding with one target image in feature space',
    schema: featureCollisionSchema,
    requires: ['gradients'],
    needs: ['model', 'test-set'],
    cleanLabel: true,
    create: (o) => (data, ctx) => featureCollision(data, o, ctx),
  }),
  entry({
    name: 'gradient-matching',
    description:
      "gradient matching (Geiping et al. 2021, Witches' Brew): L∞-bounded poisons whose training gradient matches the target loss's",
    schema: gradientMatchingSchema,
    requires: ['gradients'],
    needs: ['model', 'test-set'],
    cleanLabel: true,
    create: (o) => (data, ctx) => gradientMatching(data, o, ctx),
  }),
];

export function poisonAttackNames(): string[] {
  return POISON_ATTACKS.map((a) => a.name);
}

export function findPoisonAttack(name: string): PoisonEntry | undefined {
  return POISON_ATTACKS.find((a) => a.name === name);
}

/**
 * Runs the attack called `name` on the training set `data`: `options` checked against its schema
 * (an option it does not read is a BAD_OPTION naming both), then crafted with `ctx`.
 */
export async function runPoison(
  name: string,
  data: Dataset,
  options: Record<string, unknown>,
  ctx: PoisonContext = {},
): Promise<PoisonResult> {
  const e = findEntry(POISON_ATTACKS, name, 'poisoning attack');
  return e.create(parseEntryOptions(e, options))(data, ctx);
}
