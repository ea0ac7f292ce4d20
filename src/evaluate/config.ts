/**
 * The config of `parry evaluate`: which models (optionally behind a defense) to evaluate on which
 * data, with which attacks at which budgets, what to certify, and how to report. Parsed once at
 * the boundary (JSON or YAML) into a typed value with every default filled in; unknown keys are
 * errors naming their path (`attacks[1].parms: unknown key`). Relative paths are resolved against
 * the config file's directory.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { type core, z } from 'zod';
import { POISON_ATTACKS } from '../attacks/poisoning/registry.js';
import { miFaceSchema } from '../attacks/privacy/inversion/mi-face.js';
import { MEMBERSHIP_ATTACKS } from '../attacks/privacy/membership/registry.js';
import { STEALING_ATTACKS } from '../attacks/privacy/stealing/registry.js';
import { ATTACKS, attackNames, findAttack } from '../attacks/registry.js';
import { DEFAULT_RADII } from '../certify/curve.js';
import { dpaSchema } from '../certify/partition-aggregation.js';
import { DATASETS } from '../data/index.js';
import { fprSchema } from '../defenses/detection/detector.js';
import { DETECTOR_SPLIT } from '../defenses/detection/protocol.js';
import { DETECTORS, type DetectorName } from '../defenses/detection/registry.js';
import { parseOutputDefenseSpec } from '../defenses/output/registry.js';
import { INSPECTIONS, SCANS } from '../defenses/poisoning/registry.js';
import { checkPreprocessSpec, parsePreprocessSpec } from '../defenses/preprocess/spec.js';
import { ParryError } from '../errors.js';
import { ARCHITECTURES } from '../models/architectures.js';
import { epsSchema, NORMS } from '../objectives/threat-model.js';
import { formatPath, givenOptionsSchema, parseEntryOptions, parseWith } from '../options.js';
import { inversionSectionSchema, privacySchema, stealingSectionSchema } from './privacy-config.js';

export const EVAL_NORMS = NORMS;
export type EvalNorm = (typeof EVAL_NORMS)[number];

/** A grid of budgets (each >= 0, the rule every eps follows), sorted ascending, duplicates dropped. */
const epsGrid = z
  .array(epsSchema)
  .min(1)
  .transform((v) => [...new Set(v)].sort((a, b) => a - b));

const smoothingSchema = z.strictObject({
  /** Noise level σ; match the Gaussian noise the base model was trained with. */
  sigma: z.number().positive(),
  /** Samples to pick the top class (Cohen et al. 2019). */
  n0: z.number().int().min(1).default(100),
  /** Samples to lower-bound its probability. */
  n: z.number().int().min(1).default(10_000),
  /** Failure probability of each certificate. */
  alpha: z.number().gt(0).lt(1).default(0.001),
  /** Noisy copies per forward pass. */
  batchSize: z.number().int().min(1).default(1000),
  /** L2 radii of the certified-accuracy curve. */
  radii: z
    .array(z.number().min(0))
    .min(1)
    .default([...DEFAULT_RADII]),
});

/** `true` = certify at the L∞ grid; `{ eps }` = at these budgets; `false`/absent = not at all. */
const boundsMethod = z.preprocess(
  (v) => (v === true ? {} : v === false ? undefined : v),
  z.strictObject({ eps: epsGrid.optional() }).optional(),
);

const certifySchema = z.strictObject({
  /** Interval bound propagation (Gowal et al. 2018) on L∞ balls. */
  ibp: boundsMethod,
  /** CROWN (Zhang et al. 2018) on L∞ balls; slow on wide conv layers. */
  crown: boundsMethod,
  /** Randomized-smoothing certificate (Cohen et al. 2019) of every target, L2. */
  smoothing: smoothingSchema.optional(),
});

const modelSchema = z.strictObject({
  /** Shown in the report; default: the directory's base name. */
  name: z.string().min(1).optional(),
  /** TF.js model directory. */
  path: z.string().min(1),
  /** Default: from the model directory's training.json (defense and eps), else 'none'. */
  trainedAgainst: z.string().min(1).optional(),
  defense: z
    .strictObject({
      /** Preprocessing chain as `parry defend --preprocess` writes it, e.g. `jpeg:q=75,squeeze-bits:bits=4`. */
      preprocess: z.string().min(1).optional(),
      /** The target is the Gaussian-smoothed classifier: certified, not attacked. */
      smoothing: smoothingSchema.optional(),
      /**
       * How gradient attacks see a preprocessing defense: 'bpda' (default) differentiates each
       * non-differentiable step's surrogate (Athalye et al. 2018); 'none' the plain chain.
       */
      adaptive: z.enum(['bpda', 'none']).default('bpda'),
      /**
       * An adversarial-example detector in front of the model: the target abstains when it fires
       * (a rejected adversarial example counts as defended, a rejected clean one as an error).
       * Fitted on the first `fitExamples` training examples, its threshold set at `fpr` on the
       * next `calibrationExamples` (clean, held out), as `parry detect` does; supervised detectors
       * (lid, kde, learned) also fit on PGD-10 examples crafted on the fit set at the middle L∞
       * budget. Besides the
       * configured attacks, the joint adaptive attack (classifier loss with the detector's score
       * kept under its threshold) runs at every L∞ and L2 budget.
       */
      detector: z
        .strictObject({
          name: z.enum(DETECTORS.map((d) => d.name) as [DetectorName, ...DetectorName[]]),
          fpr: fprSchema.default(0.05),
          fitExamples: z.number().int().min(10).default(DETECTOR_SPLIT.fitExamples),
          calibrationExamples: z.number().int().min(10).default(DETECTOR_SPLIT.calibrationExamples),
          /** Iterations of the joint attack per detector weight λ. */
          jointSteps: z.number().int().min(1).default(40),
        })
        .optional(),
    })
    .optional(),
  /** Replaces the top-level `certify` for this model (`{}` certifies nothing). */
  certify: certifySchema.optional(),
});

/**
 * One attack of the config: a registry entry's own options as `params` (its strict schema minus
 * the norm, eps and seed the grid and the run give), so an option the attack does not read is
 * refused with the attack's name.
 */
const attackSchema = z.discriminatedUnion(
  'attack',
  ATTACKS.map((entry) =>
    z.strictObject({
      /** Name in results and the report; default: the registry name. Unique. */
      id: z.string().min(1).optional(),
      /** Registry name (`parry attack --help`). */
      attack: z.literal(entry.name),
      params: givenOptionsSchema(entry.schema, entry.name, ['norm', 'eps', 'seed']).prefault({}),
      /** Restrict to these norms (default: every norm the attack supports that has a grid). */
      norms: z.array(z.enum(EVAL_NORMS)).min(1).optional(),
    }),
  ) as unknown as [z.ZodObject, ...z.ZodObject[]],
  {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `unknown attack '${(issue.input as { attack?: unknown })?.attack}' (known: ${attackNames().join(', ')})`
        : undefined,
  },
) as unknown as z.ZodType<AttackConfig, Omit<AttackConfig, 'params'> & Partial<AttackConfig>>;

/** An attack of the config, as parsed (the registry's schema checked `params`). */
export interface AttackConfig {
  id?: string;
  attack: string;
  /** The options the config gave (the attack's defaults apply to the rest). */
  params: { targeted?: boolean; steps?: number; loss?: 'ce' | 'margin'; [option: string]: unknown };
  norms?: EvalNorm[];
}

const groupsSchema = z
  .strictObject({
    /** Label index or class name → group name. Classes not listed form the group '(other)'. */
    byLabel: z.record(z.string(), z.string().min(1)).optional(),
    /** File of per-example group names: a JSON array, or one name per line. */
    file: z.string().min(1).optional(),
  })
  .refine((g) => (g.byLabel === undefined) !== (g.file === undefined), {
    message: 'give exactly one of byLabel or file',
  });

/**
 * The poisoning section: recipes (any poisoning attack with its options) × defences (data
 * inspections, model scans), each recipe trained on and measured (src/evaluate/poisoning.ts).
 */
/**
 * The privacy section: membership inference on a target and reference models trained on halves
 * of a pool of `dataset`'s training split (src/evaluate/privacy.ts); the seed is the config's.
 */
const privacySectionSchema = z
  .strictObject({
    /** Data set whose training split gives the pools and means, whose test split scores. */
    dataset: z.string().min(1).default('fashion-mnist-subset'),
    membership: privacySchema.omit({ seed: true }).optional(),
    stealing: stealingSectionSchema.optional(),
    inversion: inversionSectionSchema.optional(),
  })
  .refine((p) => p.membership || p.stealing || p.inversion, {
    message: 'give at least one of membership, stealing, inversion',
  });

const poisoningSchema = z.strictObject({
  /** Data set whose training split is poisoned and whose test split measures. */
  dataset: z.string().min(1).default('fashion-mnist-subset'),
  /** Test examples measured: the first testN of the test split (default: all). */
  testN: z.number().int().min(1).optional(),
  /** Every model of the section (reference, poisoned, retrained) is trained so. */
  train: z
    .strictObject({
      arch: z.enum(ARCHITECTURES.map((a) => a.name) as [string, ...string[]]).default('cnn-small'),
      epochs: z.number().int().min(1).default(3),
      batchSize: z.number().int().min(1).default(64),
      lr: z.number().positive().default(1e-3),
      seed: z.number().int().min(0).max(0xffffffff).default(1),
    })
    .prefault({}),
  recipes: z
    .array(
      z.strictObject({
        id: z.string().min(1).optional(),
        attack: z.enum(POISON_ATTACKS.map((a) => a.name) as [string, ...string[]]),
        /** The attack's options as `parry poison` takes them (camelCase); the seed is the config's. */
        params: z.record(z.string(), z.unknown()).default({}),
      }),
    )
    .min(1),
  defenses: z
    .array(
      z.strictObject({
        /** A data inspection, a model scan, or 'strip' (params: samples, frr, seed). */
        method: z.enum(['strip', ...[...INSPECTIONS, ...SCANS].map((e) => e.name)] as [
          string,
          ...string[],
        ]),
        params: z.record(z.string(), z.unknown()).default({}),
        /** Data inspections: retrain on the set without the flagged examples and measure it. */
        retrain: z.boolean().default(true),
      }),
    )
    .default([]),
  /** Clean examples a model scan holds: the first n of the training split. */
  cleanExamples: z.number().int().min(10).default(1000),
  /** Deep Partition Aggregation trained on each poisoned set: its certified curve (k models each). */
  dpa: dpaSchema.omit({ seed: true }).optional(),
});

export const evaluateConfigSchema = z
  .strictObject({
    /** Title of the report. */
    title: z.string().optional(),
    /** Data set as the other commands take it (`--dataset`); its test split is used. */
    dataset: z.string().min(1).default('fashion-mnist-subset'),
    /** Examples: the first n of the test split. */
    n: z.number().int().min(1).default(100),
    /** Seed of every random choice; the same config and seed give the same numbers. */
    seed: z.number().int().min(0).max(0xffffffff).default(0),
    /** Examples per attack batch (also the unit of work of each worker). */
    batchSize: z.number().int().min(1).default(64),
    /** Worker threads (default: one per core; 0 or 1 runs in the calling thread). */
    workers: z.number().int().min(0).optional(),
    models: z.array(modelSchema).min(1),
    attacks: z.array(attackSchema).default([]),
    /**
     * Budgets per norm. Each attack runs at every budget of each norm it supports; minimum-norm
     * attacks (deepfool, cw, hsj) run once per norm and are thresholded at each budget.
     */
    eps: z
      .strictObject({ linf: epsGrid.optional(), l2: epsGrid.optional(), l1: epsGrid.optional() })
      .prefault({ linf: [0.05, 0.1, 0.2] }),
    certify: certifySchema.prefault({}),
    /** Groups for the fairness table, beside the per-class one. */
    groups: groupsSchema.optional(),
    gallery: z
      .strictObject({
        /** Broken examples shown per attack and norm, at the middle budget. */
        examples: z.number().int().min(0).default(3),
        /** Pixel enlargement of the images. */
        zoom: z.number().int().min(1).max(16).default(4),
      })
      .prefault({}),
    /** Saliency maps of the gallery's clean and adversarial inputs. */
    explain: z
      .strictObject({
        methods: z
          .array(z.enum(['gradient', 'smoothgrad', 'integrated-gradients']))
          .min(1)
          .default(['gradient']),
        /** smoothgrad samples / integrated-gradients steps. */
        samples: z.number().int().min(1).optional(),
      })
      .optional(),
    /** Checks that the numbers are not an artefact of weak attacks (Carlini et al. 2019). */
    honesty: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** The extra attacks (unbounded, more steps) and the gradient check use the first k examples. */
        examples: z.number().int().min(1).default(100),
        /** PGD steps of the unbounded-eps check (default: the configured pgd's, else 20). */
        unboundedSteps: z.number().int().min(1).optional(),
        moreSteps: z
          .strictObject({
            /** Steps multiplier over the configured pgd (or PGD's default 10 steps). */
            factor: z.number().min(1).default(5),
            restarts: z.number().int().min(1).default(2),
          })
          .prefault({}),
      })
      .prefault({}),
    poisoning: poisoningSchema.optional(),
    privacy: privacySectionSchema.optional(),
  })
  .superRefine(crossChecks);

export type EvaluateConfig = z.output<typeof evaluateConfigSchema>;
export type EvaluateConfigInput = z.input<typeof evaluateConfigSchema>;
export type ModelConfig = EvaluateConfig['models'][number];
export type SmoothingConfig = z.output<typeof smoothingSchema>;
export type CertifyConfig = EvaluateConfig['certify'];
export type DetectorConfig = NonNullable<NonNullable<ModelConfig['defense']>['detector']>;

/** Checks across fields: unique ids, specs that parse, attacks that have a norm to run on. */
function crossChecks(c: unknown, ctx: z.RefinementCtx): void {
  const config = c as unknown as EvaluateConfig;
  const issue = (p: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path: p, message });
  const targets = new Map<string, number>();
  config.models.forEach((m, i) => {
    if (m.defense?.preprocess !== undefined) {
      try {
        checkPreprocessSpec(m.defense.preprocess);
      } catch (e) {
        issue(['models', i, 'defense', 'preprocess'], (e as Error).message);
      }
    }
    if (m.defense?.detector && (m.defense.preprocess || m.defense.smoothing)) {
      issue(
        ['models', i, 'defense', 'detector'],
        'a detector cannot be combined with preprocess or smoothing in one target',
      );
    }
    const id = targetId(m);
    if (targets.has(id)) {
      issue(['models', i], `target '${id}' is also models[${targets.get(id)}]; give it a name`);
    }
    targets.set(id, i);
  });
  const certifyChecks = (c: CertifyConfig | undefined, at: (string | number)[]) => {
    for (const method of ['ibp', 'crown'] as const) {
      if (c?.[method] && c[method].eps === undefined && config.eps.linf === undefined) {
        issue([...at, method], `no L-inf budgets to certify at: give ${method}.eps or eps.linf`);
      }
    }
  };
  certifyChecks(config.certify, ['certify']);
  for (const [i, m] of config.models.entries()) {
    certifyChecks(m.certify, ['models', i, 'certify']);
  }
  const ids = new Map<string, number>();
  config.attacks.forEach((a, i) => {
    const entry = findAttack(a.attack);
    if (entry === undefined) return;
    const id = a.id ?? a.attack;
    if (ids.has(id)) issue(['attacks', i, 'id'], `'${id}' is also attacks[${ids.get(id)}]`);
    ids.set(id, i);
    if (attackNorms(config, a).length === 0) {
      const grids = EVAL_NORMS.filter((n) => config.eps[n] !== undefined);
      issue(
        ['attacks', i],
        `${a.attack} runs on ${entry.norms.join('|')}${a.norms ? ` (norms: ${a.norms.join(', ')})` : ''}, ` +
          `but eps has grids for ${grids.join(', ') || 'no norm'}`,
      );
    }
  });
  if (config.poisoning) poisoningChecks(config.poisoning, issue);
  if (config.privacy) privacyChecks(config.privacy, issue);
}

/**
 * Membership and stealing attacks and their params parse against their registries, output
 * chains parse, MI-Face params parse; every problem names its path.
 */
function privacyChecks(
  p: NonNullable<EvaluateConfig['privacy']>,
  issue: (p: (string | number)[], message: string) => void,
): void {
  const chains = (specs: readonly string[], at: (string | number)[]) =>
    specs.forEach((spec, i) => {
      if (spec === 'none') return;
      try {
        parseOutputDefenseSpec(spec);
      } catch (e) {
        issue([...at, i], (e as Error).message);
      }
    });
  const m = p.membership;
  if (m) {
    m.attacks.forEach((a, i) => {
      const entry = MEMBERSHIP_ATTACKS.find((e) => e.name === a.name);
      if (entry === undefined) {
        issue(
          ['privacy', 'membership', 'attacks', i, 'name'],
          `unknown membership attack '${a.name}' (known: ${MEMBERSHIP_ATTACKS.map((e) => e.name).join(', ')})`,
        );
        return;
      }
      try {
        parseEntryOptions(entry, a.params);
      } catch (e) {
        issue(['privacy', 'membership', 'attacks', i, 'params'], (e as Error).message);
      }
    });
    chains(m.outputs, ['privacy', 'membership', 'outputs']);
    if (m.population === 0 && m.attacks.some((a) => a.name === 'rmia')) {
      issue(
        ['privacy', 'membership', 'population'],
        'rmia needs population samples (population > 0)',
      );
    }
  }
  const s = p.stealing;
  if (s) {
    s.methods.forEach((a, i) => {
      const entry = STEALING_ATTACKS.find((e) => e.name === a.name);
      if (entry === undefined) {
        issue(
          ['privacy', 'stealing', 'methods', i, 'name'],
          `unknown stealing attack '${a.name}' (known: ${STEALING_ATTACKS.map((e) => e.name).join(', ')})`,
        );
        return;
      }
      try {
        parseEntryOptions(entry, { ...a.params, budget: s.budgets[0], seed: 0 });
      } catch (e) {
        issue(['privacy', 'stealing', 'methods', i, 'params'], (e as Error).message);
      }
    });
    chains(s.outputs, ['privacy', 'stealing', 'outputs']);
  }
  if (p.inversion) {
    try {
      parseWith('miFace', miFaceSchema, p.inversion.params);
    } catch (e) {
      issue(['privacy', 'inversion', 'params'], (e as Error).message);
    }
  }
}

/** Recipe and defence params parse against their entries; recipe ids are unique. */
function poisoningChecks(
  p: NonNullable<EvaluateConfig['poisoning']>,
  issue: (p: (string | number)[], message: string) => void,
): void {
  const ids = new Map<string, number>();
  p.recipes.forEach((r, i) => {
    const entry = POISON_ATTACKS.find((a) => a.name === r.attack);
    if (entry === undefined) return;
    try {
      parseEntryOptions(entry, { ...r.params, seed: 0 });
    } catch (e) {
      issue(['poisoning', 'recipes', i, 'params'], (e as Error).message);
    }
    const rate = r.params.rate;
    const id = r.id ?? (rate === undefined ? r.attack : `${r.attack} ${rate}`);
    if (ids.has(id)) {
      issue(
        ['poisoning', 'recipes', i, 'id'],
        `'${id}' is also recipes[${ids.get(id)}]; give it an id`,
      );
    }
    ids.set(id, i);
  });
  p.defenses.forEach((d, i) => {
    if (d.method === 'strip') {
      const bad = Object.keys(d.params).find((k) => !['samples', 'frr', 'seed'].includes(k));
      if (bad !== undefined) {
        issue(
          ['poisoning', 'defenses', i, 'params', bad],
          'strip reads samples, frr and seed only',
        );
      }
      return;
    }
    const entry = [...INSPECTIONS, ...SCANS].find((e) => e.name === d.method);
    if (entry === undefined) return;
    const seeded = 'seed' in entry.schema.shape ? { seed: 0 } : {};
    try {
      parseEntryOptions(entry, { ...d.params, ...seeded });
    } catch (e) {
      issue(['poisoning', 'defenses', i, 'params'], (e as Error).message);
    }
  });
}

/** The norms attack `a` runs on: supported, asked for, and with a grid, in EVAL_NORMS order. */
export function attackNorms(config: EvaluateConfig, a: AttackConfig): EvalNorm[] {
  const entry = findAttack(a.attack);
  return EVAL_NORMS.filter(
    (n) =>
      config.eps[n] !== undefined &&
      (entry?.norms as readonly string[] | undefined)?.includes(n) &&
      (a.norms === undefined || a.norms.includes(n)),
  );
}

export const attackId = (a: AttackConfig) => a.id ?? a.attack;

/** `model` or `model + defense`: the row name and the key of the target's cells. */
export function targetId(m: ModelConfig): string {
  const name = m.name ?? path.basename(path.resolve(m.path));
  const parts = [
    m.defense?.preprocess,
    m.defense?.smoothing ? `smoothing sigma=${m.defense.smoothing.sigma}` : undefined,
    m.defense?.detector ? `${m.defense.detector.name} detector` : undefined,
  ].filter((p) => p !== undefined);
  return parts.length === 0 ? name : `${name} + ${parts.join(' + ')}`;
}

/** The path of a zod issue, with the unknown key for unrecognized keys. */
function issuePathParts(issue: core.$ZodIssue): (string | number)[] {
  const parts = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
  if (issue.code === 'unrecognized_keys') parts.push(issue.keys[0]);
  return parts;
}

function issueMessage(issue: core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys' && issue.message.startsWith('Unrecognized')) {
    return 'unknown key';
  }
  return issue.message;
}

/**
 * Validates `raw` (a parsed JSON/YAML value) and fills in defaults; relative paths resolve
 * against `baseDir`. `source` names the file in errors. Throws BAD_OPTION naming the path.
 */
export function parseEvaluateConfig(
  raw: unknown,
  baseDir: string,
  source = 'config',
): EvaluateConfig {
  const r = evaluateConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issues = r.error.issues.map((i) => ({
      path: issuePathParts(i),
      message: issueMessage(i),
    }));
    const text = issues.map((i) => `${formatPath(i.path) || '(root)'}: ${i.message}`).join('; ');
    throw new ParryError('BAD_OPTION', `evaluate: ${source}: ${text}`, { issues });
  }
  return resolvePaths(r.data, baseDir);
}

/** Reads a config file: `.json` as JSON, `.yaml`/`.yml` (or anything else) as YAML. */
export function loadEvaluateConfig(file: string): EvaluateConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `evaluate: cannot read config ${file}: ${(e as Error).message}`,
    );
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    const first = String((e as Error).message).split('\n')[0];
    throw new ParryError(
      'BAD_FILE',
      `evaluate: ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${first}`,
    );
  }
  return parseEvaluateConfig(raw, path.dirname(path.resolve(file)), file);
}

function resolvePaths(c: EvaluateConfig, baseDir: string): EvaluateConfig {
  const abs = (p: string) => path.resolve(baseDir, p);
  return {
    ...c,
    dataset: resolveDataset(c.dataset, abs),
    models: c.models.map((m) => ({
      ...m,
      path: abs(m.path),
      ...(m.defense
        ? {
            defense: {
              ...m.defense,
              ...(m.defense.preprocess
                ? { preprocess: resolveSpec(m.defense.preprocess, abs) }
                : {}),
            },
          }
        : {}),
    })),
    ...(c.groups?.file ? { groups: { ...c.groups, file: abs(c.groups.file) } } : {}),
  };
}

/** `mnist:DIR` and `cifar10:DIR` take a directory; other specs stay as they are. */
function resolveDataset(spec: string, abs: (p: string) => string): string {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const entry = DATASETS.find((d) => d.name === name);
  if (entry === undefined || !entry.takesArg || name === 'synthetic') return spec;
  return `${name}:${abs(spec.slice(colon + 1))}`;
}

/** Rewrites `model=DIR` of denoiser/magnet steps to absolute paths. */
function resolveSpec(spec: string, abs: (p: string) => string): string {
  return parsePreprocessSpec(spec)
    .map((step) => {
      const pairs = Object.entries(step.params).map(
        ([k, v]) => `${k}=${k === 'model' && typeof v === 'string' ? abs(v) : String(v)}`,
      );
      return pairs.length === 0 ? step.name : `${step.name}:${pairs.join(',')}`;
    })
    .join(',');
}

/** Hash of everything that decides the numbers (not `workers`): a resumed run must match it. */
export function configHash(c: EvaluateConfig): string {
  const { workers: _workers, ...rest } = c;
  return createHash('sha256').update(JSON.stringify(rest)).digest('hex').slice(0, 16);
}

/**
 * The JSON Schema of an evaluate config (what a config file may hold, defaults included), from
 * the same zod schemas that parse it: every attack's `params` are its registry entry's options.
 */
export function evaluateConfigJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(evaluateConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
}
