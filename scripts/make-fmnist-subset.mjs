#!/usr/bin/env node
/**
 * Rebuilds data/fashion-mnist-subset/: a stratified, seeded pick of Fashion-MNIST
 * (200 per class from the official train split, 100 per class from the official test split)
 * in the same idx.gz format and file names as the full set, plus manifest.json recording the
 * seed, the sha256 of the source files and the source index of every example kept.
 *
 * Usage, from the repository root (plain Node: the script imports the compiled library):
 *
 *   npx tsc -p tsconfig.json                  # compiles src/ to dist/
 *   node scripts/make-fmnist-subset.mjs [SOURCE_DIR]
 *
 * SOURCE_DIR defaults to /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist).
 * The output is byte-for-byte reproducible: fixed seed, gzip without a timestamp.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FASHION_MNIST_DIR,
  mnistFiles,
  readIdxImages,
  readIdxLabels,
  stratifiedIndices,
  writeIdx,
} from '../dist/src/data/index.js';
import { Rng } from '../dist/src/engine/rng.js';

const SEED = 20240611;
const PER_CLASS = { train: 200, test: 100 };
const NUM_CLASSES = 10;

const sourceDir = process.argv[2] ?? FASHION_MNIST_DIR;
const outDir = fileURLToPath(new URL('../data/fashion-mnist-subset/', import.meta.url));
mkdirSync(outDir, { recursive: true });

const rng = new Rng(SEED);
const manifest = {
  description: 'Stratified subset of Fashion-MNIST (Xiao et al. 2017), MIT licence, Zalando SE',
  script: 'scripts/make-fmnist-subset.mjs',
  seed: SEED,
  perClass: PER_CLASS,
  source: {},
  indices: {},
};

for (const split of ['train', 'test']) {
  const [imagesBase, labelsBase] = mnistFiles(split);
  const imagesPath = join(sourceDir, `${imagesBase}.gz`);
  const labelsPath = join(sourceDir, `${labelsBase}.gz`);
  const images = readIdxImages(imagesPath);
  const labels = readIdxLabels(labelsPath);
  const [, h, w] = images.dims;
  const picked = stratifiedIndices(labels, NUM_CLASSES, PER_CLASS[split], rng);

  const outImages = new Uint8Array(picked.length * h * w);
  const outLabels = new Uint8Array(picked.length);
  picked.forEach((src, i) => {
    outImages.set(images.data.subarray(src * h * w, (src + 1) * h * w), i * h * w);
    outLabels[i] = labels[src];
  });
  writeIdx(
    join(outDir, `${imagesBase}.gz`),
    { dims: [picked.length, h, w], data: outImages },
    { gzip: true },
  );
  writeIdx(
    join(outDir, `${labelsBase}.gz`),
    { dims: [picked.length], data: outLabels },
    { gzip: true },
  );

  for (const path of [imagesPath, labelsPath]) {
    const digest = createHash('sha256').update(readFileSync(path)).digest('hex');
    manifest.source[basename(path)] = digest;
  }
  manifest.indices[split] = Array.from(picked);
  console.log(`${split}: ${picked.length} of ${labels.length} examples -> ${outDir}`);
}

// One line per index list keeps the manifest short and diffs readable.
const text = JSON.stringify(manifest, null, 2).replace(
  /\[\s+([\d,\s]+?)\s+\]/g,
  (_, body) => `[${body.replace(/\s+/g, '')}]`,
);
writeFileSync(join(outDir, 'manifest.json'), `${text}\n`);
