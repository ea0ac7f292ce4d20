/**
 * Backdoor triggers as plain JSON (they travel in the poison manifest, so a test set can be
 * triggered later without the attack's code): a patch stamped over a square of pixels (BadNets,
 * Gu et al. 2017; clean-label, Turner et al. 2019) or an image blended in at opacity α (Chen et
 * al. 2017). Images are NHWC float32 in [0, 1]; a trigger writes only inside that range.
 */
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import { ParryError } from '../../errors.js';
import { seedSchema } from '../../objectives/threat-model.js';
import { optionError } from './selection.js';

export const POSITIONS = [
  'top-left',
  'top-right',
  'bottom-left',
  'bottom-right',
  'center',
] as const;
export type Position = (typeof POSITIONS)[number];

/** A square patch: every channel of the pixels [y, y+size) × [x, x+size) replaced by the pattern. */
export interface PatchTrigger {
  kind: 'patch';
  /** Side in pixels. */
  size: number;
  /** Column of the patch's top-left pixel. */
  x: number;
  /** Row of the patch's top-left pixel. */
  y: number;
  /** white: 1 everywhere; checkerboard: 1 where row + column (in the patch) is even, else 0. */
  pattern: 'white' | 'checkerboard' | 'image';
  /** pattern 'image': size·size·c values in [0, 1], row-major [size, size, c]. */
  values?: number[];
}

/** x' = (1 − α)·x + α·pattern over the whole image. */
export interface BlendTrigger {
  kind: 'blend';
  alpha: number;
  /** noise: uniform [0, 1) per value, drawn in NHWC order from `Rng(patternSeed)`. */
  pattern: 'noise' | 'image';
  patternSeed?: number;
  /** pattern 'image': h·w·c values in [0, 1], row-major [h, w, c]. */
  values?: number[];
}

export type Trigger = PatchTrigger | BlendTrigger;

/** The options of a patch trigger, shared by BadNets and the clean-label backdoor. */
export const patchOptionsShape = {
  patchSize: z.number().int().min(1).default(3).describe('side of the square trigger, pixels'),
  position: z
    .enum(POSITIONS)
    .optional()
    .describe('corner (or center) of the trigger; default bottom-right; or give x and y'),
  x: z.number().int().min(0).optional().describe('column of the trigger’s top-left pixel'),
  y: z.number().int().min(0).optional().describe('row of the trigger’s top-left pixel'),
  pattern: z
    .enum(['white', 'checkerboard', 'image'])
    .default('white')
    .describe('trigger pattern: white square, checkerboard, or a given image'),
};

/** The options of a blend trigger. */
export const blendOptionsShape = {
  alpha: z.number().gt(0).max(1).default(0.1).describe('blend opacity α of the trigger image'),
  blendPattern: z
    .enum(['noise', 'image'])
    .default('noise')
    .describe('blended image: seeded uniform noise, or a given image'),
  patternSeed: seedSchema.optional().describe('seed of the noise image (default: seed)'),
};

export interface PatchOptions {
  patchSize: number;
  position?: Position;
  x?: number;
  y?: number;
  pattern: 'white' | 'checkerboard' | 'image';
}

export interface BlendOptions {
  alpha: number;
  blendPattern: 'noise' | 'image';
  patternSeed?: number;
  seed: number;
}

/**
 * The patch trigger the options describe on images `[h, w, c]`: the position resolved to x/y,
 * a given image checked. A patch larger than the image, or outside it, is a BAD_OPTION naming
 * the option.
 */
export function patchTrigger(
  owner: string,
  o: PatchOptions,
  shape: readonly number[],
  image?: Float32Array,
): PatchTrigger {
  const [h, w, c] = shape;
  const size = o.patchSize;
  if (size > h || size > w) {
    throw optionError(owner, 'patchSize', `${size} is larger than the ${h}x${w} image`);
  }
  const xy = o.x !== undefined || o.y !== undefined;
  if (xy && o.position !== undefined) {
    throw optionError(owner, 'position', 'give a position or x and y, not both');
  }
  if (xy && (o.x === undefined || o.y === undefined)) {
    throw optionError(owner, o.x === undefined ? 'x' : 'y', 'is required with the other of x, y');
  }
  let x: number;
  let y: number;
  if (xy) {
    x = o.x as number;
    y = o.y as number;
    if (x + size > w) {
      throw optionError(
        owner,
        'x',
        `${x} puts the ${size}-pixel patch outside the ${w}-pixel width`,
      );
    }
    if (y + size > h) {
      throw optionError(
        owner,
        'y',
        `${y} puts the ${size}-pixel patch outside the ${h}-pixel height`,
      );
    }
  } else {
    [x, y] = corner(o.position ?? 'bottom-right', size, h, w);
  }
  const t: PatchTrigger = { kind: 'patch', size, x, y, pattern: o.pattern };
  if (o.pattern === 'image') t.values = givenImage(owner, 'pattern', image, [size, size, c]);
  else if (image !== undefined) {
    throw optionError(owner, 'pattern', `is '${o.pattern}', but a trigger image was given`);
  }
  return t;
}

/** The blend trigger the options describe on images `[h, w, c]`. */
export function blendTrigger(
  owner: string,
  o: BlendOptions,
  shape: readonly number[],
  image?: Float32Array,
): BlendTrigger {
  if (o.blendPattern === 'noise') {
    if (image !== undefined) {
      throw optionError(owner, 'blendPattern', "is 'noise', but a trigger image was given");
    }
    return {
      kind: 'blend',
      alpha: o.alpha,
      pattern: 'noise',
      patternSeed: o.patternSeed ?? o.seed,
    };
  }
  if (o.patternSeed !== undefined) {
    throw optionError(owner, 'patternSeed', "is read only with blendPattern 'noise'");
  }
  const values = givenImage(owner, 'blendPattern', image, shape);
  return { kind: 'blend', alpha: o.alpha, pattern: 'image', values };
}

function corner(p: Position, size: number, h: number, w: number): [number, number] {
  switch (p) {
    case 'top-left':
      return [0, 0];
    case 'top-right':
      return [w - size, 0];
    case 'bottom-left':
      return [0, h - size];
    case 'bottom-right':
      return [w - size, h - size];
    case 'center':
      return [Math.floor((w - size) / 2), Math.floor((h - size) / 2)];
  }
}

function givenImage(
  owner: string,
  option: string,
  image: Float32Array | undefined,
  shape: readonly number[],
): number[] {
  const want = shape.reduce((a, b) => a * b, 1);
  if (image === undefined) {
    throw optionError(
      owner,
      option,
      `is 'image', but no trigger image [${shape.join(', ')}] was given`,
    );
  }
  if (image.length !== want) {
    throw optionError(
      owner,
      option,
      `the trigger image has ${image.length} values, [${shape.join(', ')}] needs ${want}`,
    );
  }
  const bad = image.findIndex((v) => !(v >= 0 && v <= 1));
  if (bad >= 0) {
    throw optionError(
      owner,
      option,
      `trigger image value ${image[bad]} at ${bad} is outside [0, 1]`,
    );
  }
  return Array.from(image);
}

/**
 * The values a trigger writes: `[size, size, c]` for a patch, `[h, w, c]` for a blend. Checks the
 * trigger fits images of `shape` (BAD_INPUT otherwise: a manifest for other data).
 */
export function triggerPattern(t: Trigger, shape: readonly number[]): Float32Array {
  const [h, w, c] = shape;
  if (t.kind === 'patch') {
    if (t.x + t.size > w || t.y + t.size > h) {
      throw new ParryError('BAD_INPUT', `applyTrigger: the patch does not fit a ${h}x${w} image`);
    }
    const out = new Float32Array(t.size * t.size * c);
    if (t.pattern === 'image') return fromValues(t.values, out.length);
    for (let r = 0; r < t.size; r++) {
      for (let q = 0; q < t.size; q++) {
        const v = t.pattern === 'white' || (r + q) % 2 === 0 ? 1 : 0;
        out.fill(v, (r * t.size + q) * c, (r * t.size + q + 1) * c);
      }
    }
    return out;
  }
  const n = h * w * c;
  if (t.pattern === 'image') return fromValues(t.values, n);
  const rng = new Rng(t.patternSeed ?? 0);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next();
  return out;
}

function fromValues(values: number[] | undefined, n: number): Float32Array {
  if (values === undefined || values.length !== n) {
    throw new ParryError(
      'BAD_INPUT',
      `applyTrigger: the trigger image has ${values?.length ?? 0} values, the data needs ${n}`,
    );
  }
  return Float32Array.from(values);
}

/**
 * Applies `t` in place to example `i` of `x` (`[n, h, w, c]` flat), with `pattern` from
 * `triggerPattern`. A patch overwrites its square; a blend mixes every value. Results stay in
 * [0, 1] (both are convex combinations or copies of values in [0, 1]); the blend is clipped anyway
 * against rounding.
 */
export function stampTrigger(
  x: Float32Array,
  i: number,
  shape: readonly number[],
  t: Trigger,
  pattern: Float32Array,
): void {
  const [h, w, c] = shape;
  const base = i * h * w * c;
  if (t.kind === 'patch') {
    for (let r = 0; r < t.size; r++) {
      const row = base + ((t.y + r) * w + t.x) * c;
      x.set(pattern.subarray(r * t.size * c, (r + 1) * t.size * c), row);
    }
    return;
  }
  const a = t.alpha;
  for (let j = 0; j < pattern.length; j++) {
    const v = (1 - a) * x[base + j] + a * pattern[j];
    x[base + j] = Math.min(1, Math.max(0, v));
  }
}
