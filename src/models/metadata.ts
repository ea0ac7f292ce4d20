/**
 * parry's entry in a model's `userDefinedMetadata`: what a loader needs to rebuild the
 * Classifier around the network (valid input range, normalisation, class names, architecture).
 */
import { ParryError } from '../errors.js';

export interface ParryMetadata {
  /** Name in the architecture registry the model was built from. */
  arch?: string;
  /** Seed of the initial weights. */
  seed?: number;
  bounds?: [number, number];
  /** Per-channel normalisation applied inside `logits`: (x - mean) / std. */
  mean?: number[];
  std?: number[];
  classNames?: string[];
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isNumbers = (v: unknown): v is number[] => Array.isArray(v) && v.every(isNumber);

/**
 * Reads and checks the `parry` entry of `userDefinedMetadata` from file `source`;
 * an absent entry gives `{}`, a malformed one a 'BAD_FILE' ParryError.
 */
export function readParryMetadata(userDefined: unknown, source: string): ParryMetadata {
  const raw = (userDefined as { parry?: unknown } | undefined)?.parry;
  if (raw == null) return {};
  const bad = (what: string, v: unknown) =>
    new ParryError(
      'BAD_FILE',
      `readParryMetadata: ${source} has parry.${what} = ${JSON.stringify(v)}`,
    );
  if (typeof raw !== 'object' || Array.isArray(raw)) throw bad('', raw);
  const m = raw as Record<string, unknown>;
  const out: ParryMetadata = {};
  if (m.arch != null) {
    if (typeof m.arch !== 'string') throw bad('arch', m.arch);
    out.arch = m.arch;
  }
  if (m.seed != null) {
    if (!Number.isInteger(m.seed)) throw bad('seed', m.seed);
    out.seed = m.seed as number;
  }
  if (m.bounds != null) {
    const b = m.bounds;
    if (!isNumbers(b) || b.length !== 2 || !(b[0] < b[1])) throw bad('bounds', b);
    out.bounds = [b[0], b[1]];
  }
  for (const key of ['mean', 'std'] as const) {
    if (m[key] == null) continue;
    if (!isNumbers(m[key]) || m[key].length === 0) throw bad(key, m[key]);
    out[key] = [...m[key]];
  }
  if (m.classNames != null) {
    const c = m.classNames;
    if (!Array.isArray(c) || !c.every((s) => typeof s === 'string')) throw bad('classNames', c);
    out.classNames = [...c];
  }
  return out;
}
