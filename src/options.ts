/**
 * Options at the boundary: `unknown` values parsed once (zod) into typed configs, with one error
 * shape, and the shape every registry of techniques shares (attacks, training methods,
 * preprocessors, detectors, certificates). The CLI's options, the evaluate config's params and
 * the config's JSON schema are all generated from an entry's `schema`.
 */
import { z } from 'zod';
import { type OptionIssue, ParryError } from './errors.js';

/** What a technique needs from the model or the data. */
export type Capability = 'gradients' | 'scores' | 'labels' | 'training-data';

/** One technique of a family: its options (a strict zod object with defaults) and needs. */
export interface RegistryEntry<S extends z.ZodObject = z.ZodObject> {
  readonly name: string;
  readonly description: string;
  /** Every option the entry reads, with its rule and default; nothing else is accepted. */
  readonly schema: S;
  readonly requires: readonly Capability[];
  /** Threat models the technique is defined on (`'linf'`, `'l2'`, `'l1'`), when it has one. */
  readonly norms?: readonly string[];
}

/**
 * An entry with one factory: `create` takes options `schema` has parsed (nothing re-checks them)
 * and returns the family's runner — an attack's `(model, x, labels, run) => AttackResult`, a
 * preprocessor, a detector. Build the options with `parseEntryOptions(entry, given)`.
 */
export interface TechniqueEntry<S extends z.ZodObject = z.ZodObject, R = unknown>
  extends RegistryEntry<S> {
  create(options: z.output<S>): R;
}

/** The entry's runner for `options` as a caller gives them (validated, defaults filled in). */
export function createFromEntry<S extends z.ZodObject, R>(
  entry: TechniqueEntry<S, R>,
  options: Record<string, unknown>,
): R {
  return entry.create(parseEntryOptions(entry, options));
}

/** `steps`, `attacks[1].params.steps`: an issue path as a reader writes it. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (s, p) => (typeof p === 'number' ? `${s}[${p}]` : s === '' ? String(p) : `${s}.${String(p)}`),
    '',
  );
}

/**
 * The issues of a failed parse, one per problem: an unrecognized key becomes one issue per key,
 * at the key's own path, saying who does not read it.
 */
export function issuesOf(
  error: z.ZodError,
  owner: string,
  known?: readonly string[],
): OptionIssue[] {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    if (issue.code !== 'unrecognized_keys') return [{ path, message: issue.message }];
    const reads = known ? ` (it reads: ${known.join(', ')})` : '';
    return issue.keys.map((key) => ({
      path: [...path, key],
      message: `unknown option: ${owner} does not read '${key}'${reads}`,
    }));
  });
}

/** One BAD_OPTION error naming every issue: `pgd: steps: Too small ...; loss: Invalid option ...`. */
export function optionsError(
  owner: string,
  issues: OptionIssue[],
  name: (path: readonly (string | number)[]) => string = formatPath,
): ParryError {
  return new ParryError('BAD_OPTION', `${owner}: ${describeIssues(issues, name)}`, { issues });
}

/** `steps: Too small ...; eps is required`: every issue, each after the name of its option. */
export function describeIssues(
  issues: readonly OptionIssue[],
  name: (path: readonly (string | number)[]) => string = formatPath,
): string {
  return issues
    .map(
      (i) => `${name(i.path) || 'options'}${i.message.startsWith('is ') ? ' ' : ': '}${i.message}`,
    )
    .join('; ');
}

/** A zod error message for a value that must be given: 'is required' when it is missing. */
export const requiredMessage = (issue: { input?: unknown }) =>
  issue.input === undefined ? 'is required' : undefined;

/** Parses `config` with `schema`; a failure is one BAD_OPTION naming every issue and its path. */
export function parseWith<S extends z.ZodType>(
  fn: string,
  schema: S,
  config: unknown,
): z.output<S> {
  const r = schema.safeParse(config ?? {});
  if (!r.success) throw optionsError(fn, issuesOf(r.error, fn));
  return r.data;
}

/** Drops keys whose value is `undefined` (an option not given), so defaults apply. */
export function given(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
}

/**
 * An entry's options, parsed with its schema: defaults filled in, an option the entry does not
 * read refused with the entry's name and the option's.
 */
export function parseEntryOptions<S extends z.ZodObject>(
  entry: RegistryEntry<S>,
  options: Record<string, unknown>,
): z.output<S> {
  const r = entry.schema.safeParse(given(options));
  if (!r.success) {
    throw optionsError(entry.name, issuesOf(r.error, entry.name, Object.keys(entry.schema.shape)));
  }
  return r.data;
}

/** The entry called `name`, or a BAD_OPTION listing the family's names. */
export function findEntry<E extends { name: string }>(
  entries: readonly E[],
  name: string,
  family: string,
): E {
  const entry = entries.find((e) => e.name === name);
  if (entry === undefined) {
    const known = entries.map((e) => e.name).join(', ');
    throw new ParryError('BAD_OPTION', `unknown ${family} '${name}' (known: ${known})`);
  }
  return entry;
}

/** A field without its default: validates a value when given, leaves it absent when not. */
export function withoutDefault(field: z.ZodType): z.ZodType {
  let f = field;
  while (f instanceof z.ZodDefault || f instanceof z.ZodPrefault || f instanceof z.ZodOptional) {
    f = f.unwrap() as z.ZodType;
  }
  const description = field.description;
  return (description ? f.describe(description) : f).optional();
}

/**
 * `schema` with every field optional and no defaults (what a user may give, nothing filled in);
 * an unknown key is refused as an option `owner` does not read.
 */
export function givenOptionsSchema(
  schema: z.ZodObject,
  owner: string,
  omit: readonly string[] = [],
): z.ZodObject {
  const shape = Object.fromEntries(
    Object.entries(schema.shape)
      .filter(([k]) => !omit.includes(k))
      .map(([k, v]) => [k, withoutDefault(v as z.ZodType)]),
  );
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown option: ${owner} does not read ${issue.keys.map((k) => `'${k}'`).join(', ')}`
        : undefined,
  });
}
