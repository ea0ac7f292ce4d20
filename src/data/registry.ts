/**
 * Data sets by name, for the CLI: `loadDataset('cifar10:/data/cifar', 'test')`. The list below is
 * explicit and also gives the CLI its help text. A spec is `NAME` or `NAME:ARG`; only the first
 * ':' separates, so directory arguments may contain ':'.
 */
import { ParryError } from '../errors.js';
import { loadCifar10 } from './cifar10.js';
import type { Dataset, Split } from './dataset.js';
import { loadFashionMnist, loadMnistDir } from './mnist.js';
import { loadFashionMnistSubset } from './subset.js';
import { syntheticDataset } from './synthetic.js';

export interface LoadDatasetOptions {
  /** Seed of synthetic sets; default 0. */
  seed?: number;
  /** Directory of the full Fashion-MNIST files; default Debian's /usr/share/datasets/fashion-mnist. */
  fashionMnistDir?: string;
}

export interface DatasetEntry {
  name: string;
  /** How to write the spec. */
  usage: string;
  description: string;
  /** Whether the spec takes an argument after ':'. */
  takesArg: boolean;
  load(arg: string, split: Split, opts: LoadDatasetOptions): Dataset;
}

export const SYNTHETIC_DEFAULT_N = 1000;

export const DATASETS: readonly DatasetEntry[] = [
  {
    name: 'fashion-mnist',
    usage: 'fashion-mnist',
    description:
      'Fashion-MNIST, 60,000 train / 10,000 test, 28x28x1 (apt-get install dataset-fashion-mnist)',
    takesArg: false,
    load: (_arg, split, opts) => loadFashionMnist(split, { dir: opts.fashionMnistDir }),
  },
  {
    name: 'fashion-mnist-subset',
    usage: 'fashion-mnist-subset',
    description: 'bundled Fashion-MNIST subset, 2,000 train / 1,000 test, balanced over 10 classes',
    takesArg: false,
    load: (_arg, split) => loadFashionMnistSubset(split),
  },
  {
    name: 'mnist',
    usage: 'mnist:DIR',
    description: 'any MNIST-format set in DIR ({train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz])',
    takesArg: true,
    load: (dir, split) => loadMnistDir(dir, split, `mnist:${dir}/${split}`),
  },
  {
    name: 'cifar10',
    usage: 'cifar10:DIR',
    description: 'CIFAR-10 binary version in DIR (data_batch_1..5.bin, test_batch.bin), 32x32x3',
    takesArg: true,
    load: (dir, split) => loadCifar10(dir, split),
  },
  {
    name: 'synthetic',
    usage: 'synthetic:HxWxC:K[:N]',
    description: `learnable synthetic set: K noisy class prototypes of shape HxWxC, N examples (default ${SYNTHETIC_DEFAULT_N}); seed from --seed`,
    takesArg: true,
    load: loadSynthetic,
  },
];

/** Loads the `split` of the data set named by `spec` (see DATASETS). */
export function loadDataset(spec: string, split: Split, opts: LoadDatasetOptions = {}): Dataset {
  if (split !== 'train' && split !== 'test') {
    throw new ParryError(
      'BAD_OPTION',
      `loadDataset: split must be 'train' or 'test', got '${split}'`,
    );
  }
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  const entry = DATASETS.find((d) => d.name === name);
  if (!entry) {
    const known = DATASETS.map((d) => d.usage).join(', ');
    throw new ParryError('BAD_OPTION', `loadDataset: unknown data set '${spec}' (known: ${known})`);
  }
  if (entry.takesArg && arg === '') {
    throw new ParryError('BAD_OPTION', `loadDataset: '${spec}' needs an argument: ${entry.usage}`);
  }
  if (!entry.takesArg && colon >= 0) {
    throw new ParryError(
      'BAD_OPTION',
      `loadDataset: '${entry.name}' takes no argument, got '${spec}'`,
    );
  }
  return entry.load(arg, split, opts);
}

function loadSynthetic(arg: string, split: Split, opts: LoadDatasetOptions): Dataset {
  const parts = arg.split(':');
  const dims = (parts[0] ?? '').split('x').map(Number);
  const numClasses = Number(parts[1]);
  const n = parts[2] === undefined ? SYNTHETIC_DEFAULT_N : Number(parts[2]);
  if (parts.length < 2 || parts.length > 3 || dims.length !== 3) {
    throw new ParryError(
      'BAD_OPTION',
      `loadDataset: bad synthetic spec 'synthetic:${arg}', expected synthetic:HxWxC:K[:N] (e.g. synthetic:28x28x1:10:500)`,
    );
  }
  return syntheticDataset({ shape: dims, numClasses, n, seed: opts.seed ?? 0, split });
}
