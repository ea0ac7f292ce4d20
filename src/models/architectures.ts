/**
 * Reference architectures: tfjs-layers Sequential models that output logits (final Dense,
 * linear activation). Initial weights are seeded: one `seed` gives every layer its own seed
 * through an Rng, so the same name + options + seed always builds the same weights.
 */
import * as tfl from '@tensorflow/tfjs-layers';
import { Rng } from '../engine/rng.js';
import { ParryError } from '../errors.js';

export interface ArchitectureOptions {
  /** Shape of one example; defaults to the architecture's own. */
  inputShape?: number[];
  /** Default 10. */
  numClasses?: number;
  /** Dropout rate before every Dense layer; 0 (default) adds no Dropout layers. */
  dropout?: number;
  /** Seed of the initial weights; default 0. */
  seed?: number;
}

interface Build {
  inputShape: number[];
  numClasses: number;
  dropout: number;
  rng: Rng;
}

export interface Architecture {
  name: string;
  description: string;
  defaultInputShape: number[];
  /** The layers, in order; `buildArchitecture` stacks them into a Sequential named after the entry. */
  layers(b: Build): tfl.layers.Layer[];
}

function hidden(b: Build, units: number, name: string): tfl.layers.Layer[] {
  return [
    ...(b.dropout > 0 ? [tfl.layers.dropout({ rate: b.dropout, name: `${name}_dropout` })] : []),
    tfl.layers.dense({
      units,
      activation: 'relu',
      kernelInitializer: tfl.initializers.heNormal({ seed: b.rng.nextSeed() }),
      name,
    }),
  ];
}

function logits(b: Build): tfl.layers.Layer[] {
  return [
    ...(b.dropout > 0 ? [tfl.layers.dropout({ rate: b.dropout, name: 'logits_dropout' })] : []),
    tfl.layers.dense({
      units: b.numClasses,
      activation: 'linear',
      kernelInitializer: tfl.initializers.glorotUniform({ seed: b.rng.nextSeed() }),
      name: 'logits',
    }),
  ];
}

function conv(
  b: Build,
  filters: number,
  padding: 'same' | 'valid',
  name: string,
  first = false,
  kernelSize = 3,
  strides = 1,
) {
  return tfl.layers.conv2d({
    ...(first ? { inputShape: b.inputShape } : {}),
    filters,
    kernelSize,
    strides,
    padding,
    activation: 'relu',
    kernelInitializer: tfl.initializers.heNormal({ seed: b.rng.nextSeed() }),
    name,
  });
}

/** The registry: explicit, in the order `parry` lists them. */
export const ARCHITECTURES: readonly Architecture[] = [
  {
    name: 'mlp',
    description: 'flatten - dense256 relu - dense256 relu - dense10 (28x28x1, ~270k params)',
    defaultInputShape: [28, 28, 1],
    layers: (b) => [
      tfl.layers.flatten({ inputShape: b.inputShape, name: 'flatten' }),
      ...hidden(b, 256, 'dense1'),
      ...hidden(b, 256, 'dense2'),
      ...logits(b),
    ],
  },
  {
    name: 'cnn-small',
    description:
      'conv32 - conv64 (3x3 valid) - maxpool2 - dense128 - dense10 (28x28x1, ~1.2M params)',
    defaultInputShape: [28, 28, 1],
    layers: (b) => [
      conv(b, 32, 'valid', 'conv1', true),
      conv(b, 64, 'valid', 'conv2'),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tfl.layers.flatten({ name: 'flatten' }),
      ...hidden(b, 128, 'dense1'),
      ...logits(b),
    ],
  },
  {
    name: 'cnn-tiny',
    description:
      'conv16 (4x4 stride 2) - conv32 (4x4) - dense100 - dense10, the small model of Gowal et al. ' +
      '2018 for certified training (28x28x1, ~330k params)',
    defaultInputShape: [28, 28, 1],
    layers: (b) => [
      conv(b, 16, 'valid', 'conv1', true, 4, 2),
      conv(b, 32, 'valid', 'conv2', false, 4),
      tfl.layers.flatten({ name: 'flatten' }),
      ...hidden(b, 100, 'dense1'),
      ...logits(b),
    ],
  },
  {
    name: 'cnn-cifar',
    description:
      '2x(conv32) - maxpool - 2x(conv64) - maxpool - dense256 - dense10 (32x32x3, ~660k params)',
    defaultInputShape: [32, 32, 3],
    layers: (b) => [
      conv(b, 32, 'same', 'conv1', true),
      conv(b, 32, 'valid', 'conv2'),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool1' }),
      conv(b, 64, 'same', 'conv3'),
      conv(b, 64, 'valid', 'conv4'),
      tfl.layers.maxPooling2d({ poolSize: 2, name: 'pool2' }),
      tfl.layers.flatten({ name: 'flatten' }),
      ...hidden(b, 256, 'dense1'),
      ...logits(b),
    ],
  },
];

const fmt = (v: unknown) => JSON.stringify(v);

function badOption(message: string): ParryError {
  return new ParryError('BAD_OPTION', `buildArchitecture: ${message}`);
}

/**
 * Builds architecture `name` with fresh seeded weights. The model carries
 * `userDefinedMetadata.parry = {arch, seed}`, which `saveLayersModel` writes out.
 * Throws 'BAD_OPTION' for an unknown name (listing the known ones) or bad options.
 */
export function buildArchitecture(name: string, opts: ArchitectureOptions = {}): tfl.Sequential {
  const arch = ARCHITECTURES.find((a) => a.name === name);
  if (arch == null) {
    const known = ARCHITECTURES.map((a) => a.name).join(', ');
    throw badOption(`unknown architecture '${name}' (known: ${known})`);
  }
  const inputShape = opts.inputShape ?? arch.defaultInputShape;
  if (!inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw badOption(`inputShape must be positive integers, got ${JSON.stringify(inputShape)}`);
  }
  if (name !== 'mlp' && inputShape.length !== 3) {
    throw badOption(`${name} needs inputShape [h, w, c], got ${JSON.stringify(inputShape)}`);
  }
  const numClasses = opts.numClasses ?? 10;
  if (!Number.isInteger(numClasses) || numClasses < 2) {
    throw badOption(`numClasses must be an integer >= 2, got ${numClasses}`);
  }
  const dropout = opts.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw badOption(`dropout must be in [0, 1), got ${dropout}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw badOption(`seed must be an integer in [0, 2^32), got ${seed}`);
  }
  let model: tfl.Sequential;
  try {
    const layers = arch.layers({ inputShape, numClasses, dropout, rng: new Rng(seed) });
    model = tfl.sequential({ layers, name });
  } catch (e) {
    throw badOption(`${name} cannot take inputShape ${fmt(inputShape)}: ${(e as Error).message}`);
  }
  // tfjs accepts convolutions that shrink a too small input to nothing; parry does not.
  const empty = model.layers.find((l) =>
    (l.outputShape as (number | null)[]).some((d) => d === 0 || (d != null && d < 0)),
  );
  if (empty != null) {
    model.dispose();
    throw badOption(
      `${name} cannot take inputShape ${fmt(inputShape)}: layer ${empty.name} outputs ${fmt(empty.outputShape)}`,
    );
  }
  model.setUserDefinedMetadata({ parry: { arch: name, seed } });
  return model;
}
