/**
 * `guard.yaml`: what `parry serve` puts between a client and the model, parsed once at start-up
 * (strict: an unknown key is an error, every error names its path, e.g.
 * `guards.quota.perDay: expected a positive integer, got -3`). Every section has defaults, so an
 * empty file (or none) gives a service with input limits, a per-address rate limit and per-key
 * quotas, open to everyone (no API keys).
 *
 * API keys are stored as sha256 digests (hex) of the key, never the key itself; `hashApiKey`
 * (`parry serve --hash-key`) computes them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { buildOutputDefenses } from '../defenses/output/registry.js';
import { checkPreprocessSpec, parsePreprocessSpec } from '../defenses/preprocess/spec.js';
import { type OptionIssue, ParryError } from '../errors.js';
import { formatPath } from '../options.js';

/** A value as an error message quotes it (arrays and objects only by kind: they may be huge or deep). */
export function showValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v !== null && typeof v === 'object') return 'an object';
  if (typeof v === 'number') return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

const expected = (what: string) => (issue: { input?: unknown }) =>
  `expected ${what}, got ${showValue(issue.input)}`;

const positiveInt = () => {
  const error = expected('a positive integer');
  return z
    .number({ error })
    .int({ error })
    .positive({ error })
    .max(Number.MAX_SAFE_INTEGER, { error });
};
const positiveNumber = () => {
  const error = expected('a positive number');
  return z.number({ error }).positive({ error }).finite({ error });
};
const nonNegativeNumber = () => {
  const error = expected('a number >= 0');
  return z.number({ error }).min(0, { error }).finite({ error });
};
const seedField = () => {
  const error = expected('an integer in [0, 4294967295]');
  return z.number({ error }).int({ error }).min(0, { error }).max(0xffffffff, { error });
};
const probability = () => {
  const error = expected('a number strictly between 0 and 1');
  return z.number({ error }).gt(0, { error }).lt(1, { error });
};

/** Key ids appear in logs and metric labels: short, printable, no spaces. */
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;

const apiKeySchema = z.strictObject({
  id: z
    .string({ error: expected('a key id (letters, digits, . _ -)') })
    .regex(KEY_ID, { error: expected('1 to 64 letters, digits, dots, dashes or underscores') }),
  sha256: z.string({ error: expected('a sha256 digest') }).regex(/^[0-9a-f]{64}$/, {
    error: expected('64 lowercase hex digits (parry serve --hash-key prints them)'),
  }),
});

const quotaSchema = z.strictObject({
  /** Tokens (examples) added to a key's bucket per second. */
  rate: positiveNumber().default(50),
  /** Bucket size: the most examples a key may send at once after being idle. */
  burst: positiveInt().default(256),
  /** Examples a key may send per UTC day. */
  perDay: positiveInt().default(100_000),
});

const inputSchema = z.strictObject({
  /** Examples per request. */
  maxBatch: positiveInt().default(64),
  /** Request body size in bytes (JSON or image). */
  maxBodyBytes: positiveInt().default(4 * 1024 * 1024),
});

const perAddressSchema = z.strictObject({
  /** Requests per client address per window, counted before authentication. */
  max: positiveInt().default(1200),
  windowMs: positiveInt().default(60_000),
});

const smoothingSchema = z.strictObject({
  /** Noise level σ of randomized smoothing (Cohen et al. 2019); match the model's training noise. */
  sigma: positiveNumber(),
  /** Noisy copies per example. */
  n: positiveInt().default(1000),
  /** Abstain unless the binomial test rejects a tie at this level. */
  alpha: probability().default(0.001),
  batchSize: positiveInt().default(1000),
});

export const EXTRACTION_ALARM_ACTIONS = ['flag', 'throttle', 'block'] as const;

/**
 * The extraction monitor's settings. PRADA (Juuti et al. 2019) keeps, per key, the minimum
 * distance of each new query to the key's earlier ones and raises an alarm when the
 * Shapiro–Wilk statistic W of those distances falls below `delta`.
 */
const extractionMonitorSchema = z.strictObject({
  method: z.enum(['prada'], { error: expected("'prada'") }),
  /**
   * Alarm below this W. 0.9: on the bundled Fashion-MNIST subset, 40 streams of natural images
   * never went below 0.92 after 100 queries; Jacobian augmentation fell to 0.57 (docs/serve.md).
   */
  delta: probability().default(0.9),
  /** Queries a key must have sent before the test is applied. */
  minQueries: positiveInt().default(100),
  /** On alarm: answer and record it ('flag'), answer 429 ('throttle') or 403 ('block'). */
  onAlarm: z
    .enum(EXTRACTION_ALARM_ACTIONS, { error: expected("'flag', 'throttle' or 'block'") })
    .default('flag'),
  /** Retry-After of a throttled request. */
  throttleSeconds: positiveInt().default(60),
  /** Queries kept per key to measure distances against (memory: see docs/serve.md). */
  maxStored: positiveInt().default(1000),
  /** Most recent distances per key the test reads (Shapiro–Wilk takes at most 5000). */
  maxDistances: positiveInt()
    .max(5000, { error: expected('a positive integer up to 5000 (the Shapiro–Wilk limit)') })
    .default(5000),
  /** Keys tracked at once; the least recently seen is forgotten. */
  maxKeys: positiveInt().default(100),
});

export const DETECTOR_ACTIONS = ['abstain', 'flag'] as const;

/**
 * A detector saved by `parry detect --save`, loaded once at start-up for the served model (a
 * detector fitted for another model refuses to start), and what happens to an example it flags.
 */
const detectorSchema = z.strictObject({
  /** The saved detector's folder; a relative path resolves against guard.yaml's folder. */
  path: z
    .string({ error: expected('the folder parry detect --save wrote') })
    .min(1, { error: expected('the folder parry detect --save wrote') }),
  /** 'abstain': withhold the flagged example's answer; 'flag': answer it, marked, with its score. */
  action: z.enum(DETECTOR_ACTIONS, { error: expected("'abstain' or 'flag'") }).default('abstain'),
});

const guardsSchema = z.strictObject({
  apiKeys: z.array(apiKeySchema, { error: expected('a list of { id, sha256 }') }).default([]),
  perAddress: perAddressSchema.prefault({}),
  quota: quotaSchema.prefault({}),
  input: inputSchema.prefault({}),
  /** A preprocessing chain as `parry defend --preprocess` writes it, e.g. `squeeze-bits:bits=4`. */
  preprocess: z
    .string({ error: expected('a preprocessing spec such as "squeeze-bits:bits=4"') })
    .min(1)
    .optional(),
  detector: detectorSchema.optional(),
  smoothing: smoothingSchema.optional(),
  /** An output-defence chain, e.g. `top-k:k=3,rounding:decimals=2` or `labels-only`. */
  output: z
    .string({ error: expected('an output-defence spec such as "top-k:k=3"') })
    .min(1)
    .optional(),
  extractionMonitor: extractionMonitorSchema.optional(),
});

const batchingSchema = z.strictObject({
  /** Examples gathered into one forward pass. */
  maxBatch: positiveInt().default(32),
  /** How long the first waiting request waits for others before its batch runs. */
  maxWaitMs: nonNegativeNumber().default(2),
  /**
   * 'busy': a request waits only for other clients (connections) that sent a predict request in
   * the last 50 ms and have none waiting, so a lone client never waits; 'always': the first
   * waiting request waits out `maxWaitMs` unless the batch fills.
   */
  wait: z.enum(['busy', 'always'], { error: expected("'busy' or 'always'") }).default('busy'),
});

const auditSchema = z.strictObject({
  /** The log file (relative paths resolve against guard.yaml's folder); no path: no audit log. */
  path: z
    .string({ error: expected('a file path') })
    .min(1)
    .optional(),
  /** Size at which the file is rotated to `path.1` (older ones shift up). */
  maxBytes: positiveInt().default(10 * 1024 * 1024),
  /** Rotated files kept besides the live one. */
  keep: positiveInt().default(5),
  /** Also write each request's input values (off: only their sha256). */
  includeInputs: z.boolean({ error: expected('true or false') }).default(false),
});

export const guardConfigSchema = z
  .strictObject({
    /** Seeds the randomised guards (noise preprocessors, smoothing); default: the CLI's --seed. */
    seed: seedField().optional(),
    guards: guardsSchema.prefault({}),
    batching: batchingSchema.prefault({}),
    audit: auditSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    const { quota, input, smoothing, output, preprocess } = c.guards;
    if (quota.burst < input.maxBatch) {
      ctx.addIssue({
        code: 'custom',
        path: ['guards', 'quota', 'burst'],
        message: `must be >= guards.input.maxBatch (${input.maxBatch}): a full request could never pass, got ${quota.burst}`,
      });
    }
    const monitor = c.guards.extractionMonitor;
    if (
      monitor !== undefined &&
      (monitor.minQueries < 3 || monitor.minQueries > monitor.maxDistances)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['guards', 'extractionMonitor', 'minQueries'],
        message: `must be in [3, maxDistances = ${monitor.maxDistances}] (Shapiro–Wilk needs 3 values), got ${monitor.minQueries}`,
      });
    }
    if (smoothing !== undefined && output !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['guards', 'output'],
        message:
          'cannot be combined with guards.smoothing: the smoothed classifier answers a label (or abstains), there are no probabilities to defend',
      });
    }
    const ids = new Set<string>();
    const digests = new Set<string>();
    c.guards.apiKeys.forEach((k, i) => {
      if (ids.has(k.id))
        ctx.addIssue({
          code: 'custom',
          path: ['guards', 'apiKeys', i, 'id'],
          message: `'${k.id}' is given twice`,
        });
      if (digests.has(k.sha256))
        ctx.addIssue({
          code: 'custom',
          path: ['guards', 'apiKeys', i, 'sha256'],
          message: 'the same key is given twice',
        });
      ids.add(k.id);
      digests.add(k.sha256);
    });
    for (const [field, spec, check] of [
      ['preprocess', preprocess, checkPreprocessSpec],
      ['output', output, buildOutputDefenses],
    ] as const) {
      if (spec === undefined) continue;
      try {
        check(spec);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['guards', field], message: (e as Error).message });
      }
    }
  });

export type GuardConfig = z.output<typeof guardConfigSchema>;
export type GuardConfigInput = z.input<typeof guardConfigSchema>;
export type Guards = GuardConfig['guards'];
export type ExtractionMonitorConfig = NonNullable<Guards['extractionMonitor']>;
export type SmoothingGuard = NonNullable<Guards['smoothing']>;
export type DetectorGuard = NonNullable<Guards['detector']>;
export type QuotaConfig = Guards['quota'];

function issuesOf(error: z.ZodError): OptionIssue[] {
  return error.issues.flatMap((issue) => {
    const p = issue.path.map((k) => (typeof k === 'number' ? k : String(k)));
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: [...p, key], message: 'unknown key' }));
    }
    return [{ path: p, message: issue.message }];
  });
}

/**
 * Validates a parsed guard file (`raw`) and fills in defaults; relative paths (the audit log, a
 * denoiser's `model=DIR`, the saved detector) resolve against `baseDir`. `source` names the file
 * in errors: one BAD_OPTION naming every problem by its path.
 */
export function parseGuardConfig(raw: unknown, baseDir = '.', source = 'guard.yaml'): GuardConfig {
  const r = guardConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issues = issuesOf(r.error);
    const text = issues.map((i) => `${formatPath(i.path) || '(root)'}: ${i.message}`).join('; ');
    throw new ParryError('BAD_OPTION', `guard: ${source}: ${text}`, { issues });
  }
  const c = r.data;
  const abs = (p: string) => path.resolve(baseDir, p);
  const preprocess = c.guards.preprocess && resolveModelPaths(c.guards.preprocess, abs);
  const detector = c.guards.detector && { ...c.guards.detector, path: abs(c.guards.detector.path) };
  return {
    ...c,
    guards: {
      ...c.guards,
      ...(preprocess ? { preprocess } : {}),
      ...(detector ? { detector } : {}),
    },
    audit: { ...c.audit, ...(c.audit.path ? { path: abs(c.audit.path) } : {}) },
  };
}

/** A preprocessing spec with every `model=DIR` made absolute. */
function resolveModelPaths(spec: string, abs: (p: string) => string): string {
  return parsePreprocessSpec(spec)
    .map((step) => {
      const pairs = Object.entries(step.params).map(
        ([k, v]) => `${k}=${k === 'model' && typeof v === 'string' ? abs(v) : String(v)}`,
      );
      return pairs.length === 0 ? step.name : `${step.name}:${pairs.join(',')}`;
    })
    .join(',');
}

/** Reads and validates a guard file (YAML, or JSON when it ends in .json). */
export function loadGuardConfig(file: string): GuardConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ParryError('BAD_FILE', `guard: cannot read ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    const first = String((e as Error).message).split('\n')[0];
    throw new ParryError(
      'BAD_FILE',
      `guard: ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${first}`,
    );
  }
  return parseGuardConfig(raw, path.dirname(path.resolve(file)), file);
}

/** The sha256 digest (lowercase hex) of an API key, as guard.yaml stores it. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}
