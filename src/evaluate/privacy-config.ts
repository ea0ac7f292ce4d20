/**
 * The options of a membership-inference evaluation (src/evaluate/privacy-stage.ts): the pool,
 * the population, the models, the queries, the attacks, the output defences they are re-run
 * behind, and the label-only signals. Shared by `parry privacy` and the evaluate config.
 */
import { z } from 'zod';
import {
  augmentationSignalSchema,
  boundarySignalSchema,
  noiseSignalSchema,
} from '../attacks/privacy/label-only.js';
import { populationSchema, querySetSchema } from '../attacks/privacy/reference-models.js';
import { dpSgdSchema } from '../defenses/privacy/dp-sgd.js';
import { seedSchema } from '../objectives/threat-model.js';

const attackSchema = z.strictObject({
  name: z
    .string()
    .describe('a membership attack: loss, confidence, modified-entropy, shadow, lira, rmia'),
  params: z.record(z.string(), z.unknown()).default({}).describe("the attack's own options"),
});

export const labelOnlySchema = z.discriminatedUnion('signal', [
  z.strictObject({
    signal: z.literal('augmentation'),
    params: augmentationSignalSchema.default({ queries: 'flip-shift' }),
    n: z.number().int().min(2).optional(),
    references: z.number().int().min(1).default(2),
  }),
  z.strictObject({
    signal: z.literal('noise'),
    params: noiseSignalSchema.default({ sigma: 0.1, samples: 20, seed: 0 }),
    n: z.number().int().min(2).optional(),
    references: z.number().int().min(1).default(2),
  }),
  z.strictObject({
    signal: z.literal('boundary'),
    params: boundarySignalSchema.default({ maxQueries: 2500, steps: 20, batchSize: 64, seed: 0 }),
    n: z.number().int().min(2).optional(),
    references: z.number().int().min(1).default(1),
  }),
]);

export const DEFAULT_MEMBERSHIP_ATTACKS = [
  'loss',
  'confidence',
  'modified-entropy',
  'shadow',
  'lira',
  'rmia',
] as const;

/**
 * How every model of the population trains (target and references alike, so the attacker's
 * references train as the target does): plainly, with a training method of the registry
 * (adversarial training, ...), or with DP-SGD.
 */
export const populationTrainingSchema = z
  .strictObject({
    defense: z
      .string()
      .default('none')
      .describe(
        "training method of every model: 'none' or one of the registry (pgd-at, fast-at, trades, ...)",
      ),
    params: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("the training method's own options (e.g. eps, attackSteps)"),
    dp: dpSgdSchema
      .omit({ seed: true })
      .optional()
      .describe('DP-SGD for every model (each seeded as the model is); with defense none only'),
  })
  .refine((t) => t.dp === undefined || t.defense === 'none', {
    error: 'dp trains with plain cross-entropy; it does not combine with a defense',
  });
export type PopulationTraining = z.infer<typeof populationTrainingSchema>;

export const privacySchema = z.strictObject({
  pool: z
    .number()
    .int()
    .min(4)
    .default(10000)
    .describe('candidates: the first N of the shuffled training split; the target trains on half'),
  population: z
    .number()
    .int()
    .min(0)
    .default(2000)
    .describe('population samples z (RMIA): training examples outside the pool, seen by no model'),
  models: populationSchema.default(populationSchema.parse({})),
  training: populationTrainingSchema.default({ defense: 'none', params: {} }),
  queries: querySetSchema,
  attacks: z
    .array(attackSchema)
    .default(DEFAULT_MEMBERSHIP_ATTACKS.map((name) => ({ name, params: {} }))),
  outputs: z
    .array(z.string())
    .min(1)
    .default(['none'])
    .describe(
      "output defences the score attacks are re-run behind: 'none' (raw scores) or a chain such as 'labels-only' or 'top-k:k=1'",
    ),
  labelOnly: z.array(labelOnlySchema).default([]),
  seed: seedSchema.default(0),
});
export type PrivacyConfig = z.infer<typeof privacySchema>;

/** Model stealing against each model of the config (its raw weights, no defence of the config). */
export const stealingSectionSchema = z.strictObject({
  methods: z
    .array(
      z.strictObject({
        name: z.string().describe('a stealing attack: knockoff, copycat, jacobian'),
        params: z.record(z.string(), z.unknown()).default({}).describe("the attack's own options"),
      }),
    )
    .min(1)
    .default([{ name: 'knockoff', params: {} }]),
  budgets: z
    .array(z.number().int().min(1))
    .min(1)
    .default([250, 1000])
    .describe('victim queries per stolen model: one thief per budget'),
  outputs: z
    .array(z.string())
    .min(1)
    .default(['none'])
    .describe(
      "what the victim answers: 'none' (its probabilities) or an output defence chain such as 'labels-only', 'top-k:k=1', 'rounding:decimals=1', 'reverse-sigmoid'",
    ),
  pool: z
    .string()
    .min(1)
    .optional()
    .describe('data set whose training split the thief queries (default: the section dataset)'),
  testN: z
    .number()
    .int()
    .min(1)
    .default(1000)
    .describe('test examples the thieves are scored on (accuracy, agreement, transfer)'),
  transferEps: z.number().min(0).default(0.1).describe('PGD L∞ radius of the transfer rate'),
  transferSteps: z.number().int().min(0).default(10).describe('PGD steps of the transfer rate'),
});

/** MI-Face model inversion of each model of the config. */
export const inversionSectionSchema = z.strictObject({
  params: z
    .record(z.string(), z.unknown())
    .default({})
    .describe('MI-Face options (steps, lr, score, tv, l2, start, window, threshold)'),
  classes: z.array(z.number().int().min(0)).min(1).optional().describe('classes (default: all)'),
  meanExamples: z
    .number()
    .int()
    .min(1)
    .default(1000)
    .describe('class means from the first N training examples'),
});
