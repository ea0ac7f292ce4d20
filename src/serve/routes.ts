/**
 * The routes' JSON schemas (fastify validates requests and serialises responses with them, and
 * the OpenAPI document is generated from them) and the public summary of a guard file.
 */
import { parseOutputDefenseSpec } from '../defenses/output/registry.js';
import { parsePreprocessSpec } from '../defenses/preprocess/spec.js';
import type { GuardConfig } from './guard-config.js';
import { ERROR_SCHEMA } from './http-error.js';

const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), ERROR_SCHEMA]));

const verdicts = { type: 'object', additionalProperties: { type: 'string' } } as const;

/** Image bodies: not validated by fastify (the handler decodes them), documented only. */
const imageBody = { schema: { type: 'string', contentMediaType: 'image/*' } } as const;
export const IMAGE_CONTENT = { 'image/png': imageBody, 'image/jpeg': imageBody };

/** The /v1 routes take no query parameters: one sent (a path, a model name) is refused, not ignored. */
const NO_QUERY = { type: 'object', additionalProperties: false, properties: {} } as const;

/** POST /v1/predict: JSON (shape and values are checked by the handler); images see IMAGE_CONTENT. */
export function predictSchema(maxBatch: number) {
  return {
    querystring: NO_QUERY,
    body: {
      content: {
        'application/json': {
          schema: {
            type: 'object',
            required: ['inputs'],
            additionalProperties: false,
            properties: {
              inputs: {
                type: 'array',
                minItems: 1,
                maxItems: maxBatch,
                description:
                  "examples, each nested to the model's input shape (or flat), values in its bounds",
                items: { type: 'array' },
              },
            },
          },
        },
      },
    },
    response: {
      200: {
        type: 'object',
        required: ['predictions', 'guards'],
        properties: {
          predictions: {
            type: 'array',
            items: {
              type: 'object',
              required: ['label'],
              properties: {
                label: { type: ['integer', 'null'] },
                className: { type: 'string' },
                probabilities: { type: 'array', items: { type: 'number' } },
                abstained: { type: 'boolean' },
                flagged: { type: 'boolean' },
                detectorScore: { type: 'number' },
              },
            },
          },
          guards: verdicts,
        },
      },
      ...errors(400, 401, 403, 413, 415, 429, 503),
    },
  };
}

const guardSummary = { type: 'object', additionalProperties: true } as const;

export const modelSchema = {
  querystring: NO_QUERY,
  response: {
    200: {
      type: 'object',
      required: ['inputShape', 'numClasses', 'bounds', 'accepts', 'guards'],
      properties: {
        name: { type: 'string' },
        inputShape: { type: 'array', items: { type: 'integer' } },
        numClasses: { type: 'integer' },
        classNames: { type: 'array', items: { type: 'string' } },
        bounds: { type: 'array', items: { type: 'number' }, minItems: 2, maxItems: 2 },
        accepts: { type: 'array', items: { type: 'string' } },
        guards: guardSummary,
      },
    },
    ...errors(400, 401, 429),
  },
};

const status = (values: string[]) => ({
  type: 'object',
  required: ['status'],
  properties: { status: { type: 'string', enum: values } },
});

export const PLAIN_ROUTES = {
  healthz: { response: { 200: status(['ok']) } },
  readyz: { response: { 200: status(['ready']), ...errors(503) } },
};

/** Step options without seeds: a seed would let a client predict a randomised guard's noise. */
function publicSteps(steps: { name: string; options: Record<string, unknown> }[]) {
  return steps.map((s) => ({
    name: s.name,
    options: Object.fromEntries(
      Object.entries(s.options).filter(([k]) => k !== 'seed' && k !== 'model'),
    ),
  }));
}

/**
 * What GET /v1/model says about the guards: which are in force and their public settings. Never
 * the key digests, the seed, file paths, or the extraction monitor's threshold (which would tell
 * an attacker how far it may go).
 */
export function summarizeGuards(c: GuardConfig, keysRequired: boolean, applied: readonly string[]) {
  const g = c.guards;
  return {
    auth: keysRequired ? 'api-key' : 'open',
    perAddress: g.perAddress,
    quota: g.quota,
    input: g.input,
    ...(g.preprocess
      ? {
          preprocess: publicSteps(
            parsePreprocessSpec(g.preprocess).map((s) => ({ name: s.name, options: s.params })),
          ),
        }
      : {}),
    ...(g.smoothing
      ? { smoothing: { sigma: g.smoothing.sigma, n: g.smoothing.n, alpha: g.smoothing.alpha } }
      : {}),
    ...(g.detector ? { detector: { action: g.detector.action } } : {}),
    ...(g.output ? { output: publicSteps(parseOutputDefenseSpec(g.output)) } : {}),
    ...(g.extractionMonitor
      ? {
          extractionMonitor: {
            method: g.extractionMonitor.method,
            onAlarm: g.extractionMonitor.onAlarm,
          },
        }
      : {}),
    batching: c.batching,
    applied: [...applied],
  };
}
