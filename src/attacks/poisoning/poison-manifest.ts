/**
 * What every poisoning attack returns (`PoisonResult`) and the recipe it writes beside the
 * poisoned set (`PoisonManifest`, plain JSON: `poison.json`): the attack, its validated options
 * and seed, the poisoned indices, the classes involved and whatever is needed at test time — the
 * trigger of a backdoor, the target images of a targeted attack. From a manifest alone a test set
 * can be triggered (`applyTrigger`, `triggeredTestSet`) to measure the attack success rate.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { checkDataset, type Dataset } from '../../data/dataset.js';
import { ParryError } from '../../errors.js';
import { given, parseWith } from '../../options.js';
import { stampTrigger, type Trigger, triggerPattern } from './triggers.js';

export const MANIFEST_FORMAT = 'parry-poison/1';

export interface PoisonManifest {
  format: typeof MANIFEST_FORMAT;
  attack: string;
  /** The options the attack ran with, validated, defaults filled in (seed included). */
  options: Record<string, unknown>;
  seed: number;
  /** The poisoned (training) set this manifest belongs to. */
  dataset: { name: string; shape: number[]; numClasses: number };
  /** Indices (ascending) of the examples the attack changed, into the training set. */
  poisonedIndices: number[];
  /** The class the attacker wants predicted (null: random flips, all-to-all backdoors). */
  targetClass: number | null;
  /** The only class poisoned (class-pair flips), or null. */
  sourceClass: number | null;
  /** Backdoors: 'all-to-one' (every triggered input → targetClass) or 'all-to-all' (y → y+1 mod K). */
  mapping: 'all-to-one' | 'all-to-all' | null;
  /** What triggers the backdoor at test time, or null (label flips, targeted attacks). */
  trigger: Trigger | null;
  /** Targeted attacks (feature collision, gradient matching): the test images aimed at. */
  targetImages: number[] | null;
  /** Whether poisoned examples carry changed labels (false for clean-label attacks). */
  labelsChanged: boolean;
}

/** A poisoning attack's answer: the poisoned copy of the training set, and its recipe. */
export interface PoisonResult {
  dataset: Dataset;
  /** Same as `manifest.poisonedIndices`. */
  poisonedIndices: number[];
  manifest: PoisonManifest;
  /** What the crafting reached, for reports (e.g. feature distances, the alignment loss). */
  summary?: Record<string, number>;
}

const count = z.number().int().min(0);
const unit = z.number().min(0).max(1);

const triggerSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('patch'),
    size: z.number().int().min(1),
    x: count,
    y: count,
    pattern: z.enum(['white', 'checkerboard', 'image']),
    values: z.array(unit).optional(),
  }),
  z.strictObject({
    kind: z.literal('blend'),
    alpha: z.number().gt(0).max(1),
    pattern: z.enum(['noise', 'image']),
    patternSeed: count.max(0xffffffff).optional(),
    values: z.array(unit).optional(),
  }),
]);

/** The manifest's schema: `parseManifest` checks a `poison.json` read back with it. */
export const poisonManifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  attack: z.string(),
  options: z.record(z.string(), z.unknown()),
  seed: count.max(0xffffffff),
  dataset: z.strictObject({
    name: z.string(),
    shape: z.array(count).length(4),
    numClasses: z.number().int().min(2),
  }),
  poisonedIndices: z.array(count),
  targetClass: count.nullable(),
  sourceClass: count.nullable(),
  mapping: z.enum(['all-to-one', 'all-to-all']).nullable(),
  trigger: triggerSchema.nullable(),
  targetImages: z.array(count).nullable(),
  labelsChanged: z.boolean(),
});

/** A manifest from parsed JSON (e.g. `poison.json`); BAD_OPTION naming every bad field. */
export function parseManifest(json: unknown): PoisonManifest {
  return parseWith('poison manifest', poisonManifestSchema, json) as PoisonManifest;
}

/**
 * The manifest in the file `file` (`poison.json` as `parry poison` writes it), and its `source`:
 * the `--dataset` the poisoned set was made from, when recorded (the `summary` field is
 * informative and dropped). BAD_FILE when unreadable, BAD_OPTION when invalid.
 */
export function readManifest(file: string): { manifest: PoisonManifest; source?: string } {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `poison manifest: cannot read ${file}: ${(e as Error).message}`,
    );
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ParryError('BAD_OPTION', `poison manifest: ${file} does not hold a JSON object`);
  }
  const { source, summary: _summary, ...fields } = json as Record<string, unknown>;
  const manifest = parseManifest(fields);
  return typeof source === 'string' ? { manifest, source } : { manifest };
}

/**
 * The manifest of the training set left after removing the examples `removed` (any order) from
 * the set `manifest` describes: the size shrinks, the remaining poisons' indices are renumbered.
 */
export function manifestAfterRemoval(
  manifest: PoisonManifest,
  removed: readonly number[],
): PoisonManifest {
  const n = manifest.dataset.shape[0];
  const gone = new Uint8Array(n);
  for (const i of removed) gone[i] = 1;
  const newIndex = new Int32Array(n);
  let kept = 0;
  for (let i = 0; i < n; i++) newIndex[i] = gone[i] ? -1 : kept++;
  return {
    ...manifest,
    dataset: { ...manifest.dataset, shape: [kept, ...manifest.dataset.shape.slice(1)] },
    poisonedIndices: manifest.poisonedIndices.filter((i) => !gone[i]).map((i) => newIndex[i]),
  };
}

/** What an attack knows when it writes its manifest. */
export interface ManifestFields {
  attack: string;
  options: Record<string, unknown>;
  seed: number;
  poisonedIndices: number[];
  targetClass?: number | null;
  sourceClass?: number | null;
  mapping?: 'all-to-one' | 'all-to-all' | null;
  trigger?: Trigger | null;
  targetImages?: number[] | null;
  labelsChanged: boolean;
}

/** The result of an attack on `data` that produced `poisoned`. */
export function poisonResult(data: Dataset, poisoned: Dataset, f: ManifestFields): PoisonResult {
  const manifest: PoisonManifest = {
    format: MANIFEST_FORMAT,
    attack: f.attack,
    options: given(f.options),
    seed: f.seed,
    dataset: { name: data.name, shape: [...data.shape], numClasses: data.numClasses },
    poisonedIndices: [...f.poisonedIndices],
    targetClass: f.targetClass ?? null,
    sourceClass: f.sourceClass ?? null,
    mapping: f.mapping ?? null,
    trigger: f.trigger ?? null,
    targetImages: f.targetImages ?? null,
    labelsChanged: f.labelsChanged,
  };
  return { dataset: poisoned, poisonedIndices: [...f.poisonedIndices], manifest };
}

/**
 * Checks that `data` is the kind of data `manifest` was made for: the same image shape and number
 * of classes and, with `training`, the very set (its size; every poisoned index inside it).
 * BAD_INPUT saying what differs.
 */
export function checkManifestMatches(
  data: Dataset,
  manifest: PoisonManifest,
  opts: { training?: boolean } = {},
): void {
  checkDataset(data, 'poison manifest');
  const want = manifest.dataset;
  const fail = (what: string) => {
    throw new ParryError(
      'BAD_INPUT',
      `poison manifest (${manifest.attack} on '${want.name}') does not match data set '${data.name}': ${what}`,
    );
  };
  const [n, h, w, c] = data.shape;
  if (h !== want.shape[1] || w !== want.shape[2] || c !== want.shape[3]) {
    fail(`images are ${h}x${w}x${c}, the manifest's ${want.shape.slice(1).join('x')}`);
  }
  if (data.numClasses !== want.numClasses) {
    fail(`${data.numClasses} classes, the manifest's ${want.numClasses}`);
  }
  if (opts.training) {
    if (n !== want.shape[0]) fail(`${n} examples, the manifest's ${want.shape[0]}`);
    const bad = manifest.poisonedIndices.find((i) => i >= n);
    if (bad !== undefined) fail(`poisoned index ${bad} is outside [0, ${n})`);
  }
}

/**
 * The manifest's trigger applied to every example of `x`: a data set (its labels kept) or a flat
 * NHWC array of images shaped like the manifest's. Returns a new data set or array; the input is
 * not changed. BAD_OPTION when the manifest has no trigger, BAD_INPUT when the data does not match.
 */
export function applyTrigger(x: Dataset, manifest: PoisonManifest): Dataset;
export function applyTrigger(x: Float32Array, manifest: PoisonManifest): Float32Array;
export function applyTrigger(
  x: Float32Array | Dataset,
  manifest: PoisonManifest,
): Float32Array | Dataset {
  const trigger = manifestTrigger(manifest);
  const shape = manifest.dataset.shape.slice(1);
  const size = shape[0] * shape[1] * shape[2];
  if (x instanceof Float32Array) {
    if (x.length % size !== 0) {
      throw new ParryError(
        'BAD_INPUT',
        `applyTrigger: ${x.length} values are not whole ${shape.join('x')} images`,
      );
    }
    return triggered(x, shape, trigger);
  }
  checkManifestMatches(x, manifest);
  return {
    ...x,
    name: `${x.name}+trigger`,
    x: triggered(x.x, shape, trigger),
    labels: x.labels.slice(),
  };
}

/**
 * The test set for the attack success rate: the examples a backdoor should move — for
 * all-to-one those not already of the target class, for all-to-all every one — triggered and
 * labelled with what the attacker wants (the target class; y+1 mod K for all-to-all). Accuracy
 * on it is the attack success rate.
 */
export function triggeredTestSet(test: Dataset, manifest: PoisonManifest): Dataset {
  const trigger = manifestTrigger(manifest);
  checkManifestMatches(test, manifest);
  const k = test.numClasses;
  const shape = test.shape.slice(1);
  const size = shape[0] * shape[1] * shape[2];
  const keep: number[] = [];
  for (let i = 0; i < test.labels.length; i++) {
    if (manifest.mapping === 'all-to-all' || test.labels[i] !== manifest.targetClass) keep.push(i);
  }
  const x = new Float32Array(keep.length * size);
  const labels = new Int32Array(keep.length);
  keep.forEach((j, i) => {
    x.set(test.x.subarray(j * size, (j + 1) * size), i * size);
    labels[i] =
      manifest.mapping === 'all-to-all'
        ? (test.labels[j] + 1) % k
        : (manifest.targetClass as number);
  });
  const out: Dataset = {
    name: `${test.name}+trigger`,
    x: triggered(x, shape, trigger),
    shape: [keep.length, ...shape],
    labels,
    numClasses: k,
  };
  if (test.classNames) out.classNames = test.classNames;
  return out;
}

function manifestTrigger(manifest: PoisonManifest): Trigger {
  if (manifest.trigger === null) {
    throw new ParryError(
      'BAD_OPTION',
      `applyTrigger: the ${manifest.attack} manifest has no trigger (only backdoor attacks have one)`,
    );
  }
  return manifest.trigger;
}

/** A triggered copy of flat images `x` (`[n, ...shape]`). */
function triggered(x: Float32Array, shape: readonly number[], trigger: Trigger): Float32Array {
  const pattern = triggerPattern(trigger, shape);
  const out = x.slice();
  const n = x.length / (shape[0] * shape[1] * shape[2]);
  for (let i = 0; i < n; i++) stampTrigger(out, i, shape, trigger, pattern);
  return out;
}
