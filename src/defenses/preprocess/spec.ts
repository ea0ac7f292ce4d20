/**
 * Preprocessing specs as the command line writes them: steps separated by commas, each
 * `name:key=value` with further `key=value` tokens belonging to the step before, e.g.
 *   jpeg:q=75,squeeze-bits:bits=4,median:k=3      noise:kind=uniform,sigma=0.1,crop:scale=0.8
 * Unknown names, unknown keys and bad values are BAD_OPTION errors naming the step.
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../../errors.js';
import type { RegistryEntry } from '../../options.js';
import { autoencoderSchema, createAutoencoder, loadDenoiser } from './autoencoder.js';
import { bitDepthSchema, createBitDepth } from './bit-depth.js';
import { createCropResize, cropResizeSchema } from './crop-resize.js';
import { createJpeg, jpegSchema } from './jpeg.js';
import { createMedian, medianSchema } from './median.js';
import { createNoise, noiseSchema } from './noise.js';
import type { Preprocessor } from './preprocessor.js';
import { createResizePad, resizePadSchema } from './resize-pad.js';
import { createSmoothing, smoothingSchema } from './spatial-smoothing.js';
import { createTv, tvSchema } from './tv-minimization.js';

/**
 * A preprocessing step in the registry shape every family shares: its strict schema (the step's
 * own options; a preprocessor has no threat model), what it needs, and one factory.
 */
export interface PreprocessorEntry extends RegistryEntry {
  /** Validates params and builds the step (autoencoders also load their model). */
  create(params: Record<string, unknown>): Preprocessor | Promise<Preprocessor>;
}

const autoencoder =
  (name: 'denoiser' | 'magnet') =>
  async (params: Record<string, unknown>): Promise<Preprocessor> => {
    createAutoencoder(name, params, undefined as unknown as tfl.LayersModel); // validates
    return createAutoencoder(name, params, await loadDenoiser(String(params.model)));
  };

export const PREPROCESSORS: readonly PreprocessorEntry[] = [
  {
    name: 'jpeg',
    description: 'JPEG compression, q=1..100 (jpeg-js codec)',
    schema: jpegSchema,
    requires: [],
    create: createJpeg,
  },
  {
    name: 'squeeze-bits',
    description: 'feature squeezing: bit-depth reduction, bits=1..16',
    schema: bitDepthSchema,
    requires: [],
    create: createBitDepth,
  },
  {
    name: 'median',
    description: 'feature squeezing: k×k median filter, reflect padding, k odd',
    schema: medianSchema,
    requires: [],
    create: createMedian,
  },
  {
    name: 'smooth',
    description: 'spatial smoothing: kind=mean|gaussian, k odd, sigma',
    schema: smoothingSchema,
    requires: [],
    create: createSmoothing,
  },
  {
    name: 'tv',
    description: 'total-variation denoising by gradient steps: lambda, steps, stepSize',
    schema: tvSchema,
    requires: [],
    create: createTv,
  },
  {
    name: 'noise',
    description: 'additive noise: kind=gaussian|uniform, sigma (randomised)',
    schema: noiseSchema,
    requires: [],
    create: createNoise,
  },
  {
    name: 'crop',
    description: 'random crop of side fraction U(scale, 1), resized back (randomised)',
    schema: cropResizeSchema,
    requires: [],
    create: createCropResize,
  },
  {
    name: 'resize-pad',
    description: 'random shrink to U(scale, 1) and random padding (Xie et al. 2018; randomised)',
    schema: resizePadSchema,
    requires: [],
    create: createResizePad,
  },
  {
    name: 'denoiser',
    description: 'denoising autoencoder, model=DIR (parry train-denoiser)',
    schema: autoencoderSchema,
    requires: [],
    create: autoencoder('denoiser'),
  },
  {
    name: 'magnet',
    description: "MagNet reformer: an autoencoder's reconstruction, model=DIR",
    schema: autoencoderSchema,
    requires: [],
    create: autoencoder('magnet'),
  },
];

export interface PreprocessStep {
  name: string;
  params: Record<string, unknown>;
}

const bad = (message: string) => new ParryError('BAD_OPTION', `preprocess: ${message}`);

/** "75" → 75, "true" → true, anything else stays a string (the step's schema decides). */
function parseValue(raw: string): unknown {
  if (/^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw)) return Number(raw);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  return raw;
}

/** Splits a spec into steps with raw params; checks names and key syntax, not values. */
export function parsePreprocessSpec(spec: string): PreprocessStep[] {
  const steps: PreprocessStep[] = [];
  const names = PREPROCESSORS.map((p) => p.name);
  for (const token of spec.split(',').map((t) => t.trim())) {
    if (token === '') throw bad(`empty step in '${spec}'`);
    const colon = token.indexOf(':');
    let pairs: string;
    if (colon >= 0 || !token.includes('=')) {
      const name = colon >= 0 ? token.slice(0, colon) : token;
      if (!names.includes(name)) {
        throw bad(`unknown step '${name}' (known: ${names.join(', ')})`);
      }
      steps.push({ name, params: {} });
      pairs = colon >= 0 ? token.slice(colon + 1) : '';
    } else {
      if (steps.length === 0) throw bad(`'${token}' comes before any step name`);
      pairs = token;
    }
    if (pairs === '') continue;
    const step = steps[steps.length - 1];
    const eq = pairs.indexOf('=');
    const key = pairs.slice(0, eq).trim();
    if (eq <= 0 || key === '' || pairs.slice(eq + 1).trim() === '') {
      throw bad(`${step.name}: expected key=value, got '${pairs}'`);
    }
    if (key in step.params) throw bad(`${step.name}: '${key}' given twice`);
    step.params[key] = parseValue(pairs.slice(eq + 1).trim());
  }
  if (steps.length === 0) throw bad('no steps');
  return steps;
}

/** Builds the steps of a spec (validating every value); autoencoders load their models. */
export async function buildPreprocessors(spec: string | PreprocessStep[]): Promise<Preprocessor[]> {
  const steps = typeof spec === 'string' ? parsePreprocessSpec(spec) : spec;
  const out: Preprocessor[] = [];
  for (const step of steps) {
    const entry = PREPROCESSORS.find((p) => p.name === step.name);
    if (entry === undefined) throw bad(`unknown step '${step.name}'`);
    out.push(await entry.create(step.params));
  }
  return out;
}

/** Validates a spec's values without loading any model (for early CLI errors). */
export function checkPreprocessSpec(spec: string): PreprocessStep[] {
  const steps = parsePreprocessSpec(spec);
  for (const step of steps) {
    if (step.name === 'denoiser' || step.name === 'magnet') {
      createAutoencoder(step.name, step.params, undefined as unknown as tfl.LayersModel);
    } else {
      const entry = PREPROCESSORS.find((p) => p.name === step.name)!;
      entry.create(step.params);
    }
  }
  return steps;
}

/** The chain of `spec`, built once per pool worker and kept in its task cache (autoencoders load a model). */
export async function cachedPreprocessors(
  spec: string,
  cache: Map<string, unknown>,
): Promise<Preprocessor[]> {
  const key = `preprocess:${spec}`;
  let chain = cache.get(key) as Preprocessor[] | undefined;
  if (chain === undefined) {
    chain = await buildPreprocessors(spec);
    cache.set(key, chain);
  }
  return chain;
}
