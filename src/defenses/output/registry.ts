/**
 * The output defences as a plain list in the registry shape every family shares: a strict
 * schema of the options each reads (with defaults), what it needs from the model, and one
 * factory. A chain is written as the command line writes preprocessing steps, steps separated
 * by commas, each `name:key=value` with further `key=value` tokens belonging to the step before:
 *
 *   top-k:k=3,renormalize=true,rounding:decimals=2        reverse-sigmoid:beta=1,gamma=0.2
 *
 * An unknown name, an option a defence does not read, and a bad value are BAD_OPTION errors
 * naming the defence.
 */
import type { z } from 'zod';
import { ParryError } from '../../errors.js';
import { findEntry, parseEntryOptions, type TechniqueEntry } from '../../options.js';
import { createHighConfidence, highConfidenceSchema } from './high-confidence.js';
import { createLabelsOnly, labelsOnlySchema } from './labels-only.js';
import type { OutputDefense } from './output-defense.js';
import { createProbabilityNoise, probabilityNoiseSchema } from './probability-noise.js';
import { createReverseSigmoid, reverseSigmoidSchema } from './reverse-sigmoid.js';
import { createRounding, roundingSchema } from './rounding.js';
import { createTopK, topKSchema } from './top-k.js';

export type OutputDefenseEntry<S extends z.ZodObject = z.ZodObject> = TechniqueEntry<
  S,
  OutputDefense
>;

function entry<S extends z.ZodObject>(e: OutputDefenseEntry<S>): OutputDefenseEntry {
  return e as unknown as OutputDefenseEntry;
}

export const OUTPUT_DEFENSES: readonly OutputDefenseEntry[] = [
  entry({
    name: 'top-k',
    description: 'keep the k largest probabilities, zero the rest (renormalize: rescale to sum 1)',
    schema: topKSchema,
    requires: ['scores'],
    create: createTopK,
  }),
  entry({
    name: 'rounding',
    description: 'round every probability to `decimals` places (half to even)',
    schema: roundingSchema,
    requires: ['scores'],
    create: createRounding,
  }),
  entry({
    name: 'reverse-sigmoid',
    description:
      'reverse-sigmoid perturbation (Lee et al. 2019) with magnitude beta and convergence gamma, renormalised',
    schema: reverseSigmoidSchema,
    requires: ['scores'],
    create: createReverseSigmoid,
  }),
  entry({
    name: 'noise',
    description: 'Gaussian noise of std sigma on the probabilities, clipped at 0 and renormalised',
    schema: probabilityNoiseSchema,
    requires: ['scores'],
    create: createProbabilityNoise,
  }),
  entry({
    name: 'high-confidence',
    description: 'probabilities below cutoff answered as 0',
    schema: highConfidenceSchema,
    requires: ['scores'],
    create: createHighConfidence,
  }),
  entry({
    name: 'labels-only',
    description: 'the one-hot top-1 label only',
    schema: labelsOnlySchema,
    requires: ['labels'],
    create: createLabelsOnly,
  }),
];

export function outputDefenseNames(): string[] {
  return OUTPUT_DEFENSES.map((e) => e.name);
}

/** The defence `name` with `options` checked against its schema (defaults filled in). */
export function createOutputDefense(
  name: string,
  options: Record<string, unknown> = {},
): OutputDefense {
  const e = findEntry(OUTPUT_DEFENSES, name, 'output defense');
  return e.create(parseEntryOptions(e, options));
}

export interface OutputDefenseStep {
  name: string;
  options: Record<string, unknown>;
}

const bad = (message: string) => new ParryError('BAD_OPTION', `output defenses: ${message}`);

/** "3" → 3, "true" → true, anything else stays a string (the defence's schema decides). */
function parseValue(raw: string): unknown {
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw)) return Number(raw);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  return raw;
}

/** Splits a chain spec into steps with raw options; checks names and syntax, not values. */
export function parseOutputDefenseSpec(spec: string): OutputDefenseStep[] {
  const names = outputDefenseNames();
  const steps: OutputDefenseStep[] = [];
  for (const token of spec.split(',').map((t) => t.trim())) {
    if (token === '') throw bad(`empty step in '${spec}'`);
    const colon = token.indexOf(':');
    let pair = token;
    if (colon >= 0 || !token.includes('=')) {
      const name = colon >= 0 ? token.slice(0, colon) : token;
      if (!names.includes(name))
        throw bad(`unknown defense '${name}' (known: ${names.join(', ')})`);
      steps.push({ name, options: {} });
      pair = colon >= 0 ? token.slice(colon + 1) : '';
    } else if (steps.length === 0) {
      throw bad(`'${token}' comes before any defense name`);
    }
    if (pair === '') continue;
    const step = steps[steps.length - 1];
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    if (eq <= 0 || key === '' || value === '') {
      throw bad(`${step.name}: expected key=value, got '${pair}'`);
    }
    if (key in step.options) throw bad(`${step.name}: '${key}' given twice`);
    step.options[key] = parseValue(value);
  }
  if (steps.length === 0) throw bad('no steps');
  return steps;
}

/** The chain of a spec (or of parsed steps), every step's options validated. */
export function buildOutputDefenses(spec: string | readonly OutputDefenseStep[]): OutputDefense[] {
  const steps = typeof spec === 'string' ? parseOutputDefenseSpec(spec) : spec;
  return steps.map((s) => createOutputDefense(s.name, s.options));
}
