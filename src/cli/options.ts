/**
 * Command-line options generated from registry schemas: one flag per option any entry reads
 * (`stepSize` → `--step-size`), its parser from the zod type, its help from the schema's
 * description plus the entries that read it. Only flags the user gave reach the library, where
 * the chosen entry's strict schema checks them: an option it does not read is an error there.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { isParryError, ParryError } from '../errors.js';
import { describeIssues, type RegistryEntry } from '../options.js';

/** `stepSize` → `step-size`. */
export const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The zod type under defaults, optionals and descriptions. */
function core(field: z.ZodType): z.ZodType {
  let f = field;
  while (f instanceof z.ZodDefault || f instanceof z.ZodPrefault || f instanceof z.ZodOptional) {
    f = f.unwrap() as z.ZodType;
  }
  return f;
}

function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) {
    throw new InvalidArgumentError(`must be a number, got '${value}'`);
  }
  return n;
}

/** The flags for one option key: a value flag, or a `--x`/`--no-x` pair for booleans. */
function flagsFor(key: string, field: z.ZodType, help: string): Option[] {
  const f = core(field);
  const flag = kebab(key);
  if (f instanceof z.ZodBoolean || f instanceof z.ZodLiteral) {
    return [new Option(`--${flag}`, help), new Option(`--no-${flag}`, `do not: ${help}`)];
  }
  if (f instanceof z.ZodEnum) {
    return [new Option(`--${flag} <value>`, help).choices(f.options.map(String))];
  }
  if (f instanceof z.ZodArray) {
    return [
      new Option(`--${flag} <list>`, `${help} (comma-separated)`).argParser((v) => v.split(',')),
    ];
  }
  return [new Option(`--${flag} <value>`, help).argParser(parseNumber)];
}

/** Every option key the entries read, beside `skip`, with the entries that read it. */
export function entryOptionKeys(
  entries: readonly RegistryEntry[],
  skip: readonly string[] = [],
): Map<string, { field: z.ZodType; readers: string[] }> {
  const keys = new Map<string, { field: z.ZodType; readers: string[] }>();
  for (const e of entries) {
    for (const [key, field] of Object.entries(e.schema.shape)) {
      if (skip.includes(key)) continue;
      const k = keys.get(key) ?? { field: field as z.ZodType, readers: [] };
      k.readers.push(e.name);
      keys.set(key, k);
    }
  }
  return keys;
}

/**
 * Adds one flag per option the entries read (except `skip`, which the command declares itself) and
 * returns the keys, for `givenEntryOptions`. Flags carry no default: a schema's default applies.
 */
export function addEntryOptions(
  cmd: Command,
  entries: readonly RegistryEntry[],
  skip: readonly string[] = [],
): string[] {
  const keys = entryOptionKeys(entries, skip);
  for (const [key, { field, readers }] of keys) {
    const help = `${field.description ?? key} [${readers.length === entries.length ? 'all' : readers.join(', ')}]`;
    for (const option of flagsFor(key, field, help)) cmd.addOption(option);
  }
  return [...keys.keys()];
}

/** The values of `keys` the user gave on the command line (or in the environment). */
export function givenEntryOptions(cmd: Command, keys: readonly string[]): Record<string, unknown> {
  const opts = cmd.opts();
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const source = cmd.getOptionValueSource(key);
    if (source === 'cli' || source === 'env') out[key] = opts[key];
  }
  return out;
}

/**
 * Runs `work`, rewording an options error of `owner` in the command's terms: every option named
 * in it by its flag (`stepSize` → `--step-size`). The library's own messages name options, never
 * flags. `keys` are the option names to reword besides those in the issues' paths.
 */
export async function withFlagNames<T>(
  owner: string,
  work: () => Promise<T>,
  keys: readonly string[] = [],
): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (!isParryError(e) || e.issues.length === 0 || !e.message.startsWith(`${owner}: `)) throw e;
    const names = new Set(['seed', ...keys, ...e.issues.map((i) => String(i.path[0] ?? ''))]);
    const flags = (text: string) =>
      text.replace(/\b[a-z][A-Za-z0-9]*\b/g, (w) =>
        names.has(w) && w !== '' ? `--${kebab(w)}` : w,
      );
    const issues = e.issues.map((i) => ({ path: i.path, message: flags(i.message) }));
    const flag = (path: readonly (string | number)[]) => `--${kebab(String(path[0] ?? ''))}`;
    throw new ParryError(e.code, `${owner}: ${describeIssues(issues, flag)}`, { issues, cause: e });
  }
}
