#!/usr/bin/env node
/**
 * STRIP's false acceptance of triggered inputs at a chosen false rejection of clean ones, for the
 * poisoning closing-note table. Fits STRIP on the first N training examples of the clean data set,
 * sets its threshold at FRR on the next N, and prints one JSON object: the share of the triggered
 * test split accepted, and of the clean test split rejected.
 *   node scripts/strip-far.mjs MODEL_DIR POISON_JSON [CLEAN_DATASET=fashion-mnist] [FRR=0.01] [N=1000]
 * Run `npm run build` first (it uses dist/).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../dist/src/engine/backend.js';
import {
  firstExamples,
  loadClassifier,
  loadDataset,
  readManifest,
  StripDetector,
  sliceDataset,
  triggeredTestSet,
} from '../dist/src/index.js';

const [modelDir, manifestFile, clean = 'fashion-mnist', frrArg = '0.01', nArg = '1000'] =
  process.argv.slice(2);
if (!modelDir || !manifestFile) {
  console.error(
    'usage: node scripts/strip-far.mjs MODEL_DIR POISON_JSON [CLEAN_DATASET] [FRR] [N]',
  );
  process.exit(2);
}
const frr = Number(frrArg);
const n = Number(nArg);
await initBackend();
const model = await loadClassifier(modelDir);
const { manifest, source } = readManifest(manifestFile);
const train = loadDataset(clean, 'train');
const test = loadDataset(source ?? clean, 'test');
const asTensor = (d) => tf.tensor(d.x, d.shape);
const fitX = asTensor(firstExamples(train, n));
const calX = asTensor(sliceDataset(train, n, 2 * n));
const trigX = asTensor(triggeredTestSet(test, manifest));
const testX = asTensor(test);
const det = new StripDetector({ samples: 100, seed: 1 });
const started = performance.now();
await det.fit(model, fitX);
det.calibrate(calX, frr);
const accepted = det.detect(trigX).filter((f) => !f).length;
const rejected = det.detect(testX).filter(Boolean).length;
console.log(
  JSON.stringify({
    model: modelDir,
    manifest: manifestFile,
    frr_target: frr,
    fit_examples: n,
    calibration_examples: n,
    triggered: trigX.shape[0],
    false_acceptance: accepted / trigX.shape[0],
    clean_test: testX.shape[0],
    false_rejection: rejected / testX.shape[0],
    seconds: (performance.now() - started) / 1000,
  }),
);
det.dispose();
tf.dispose([fitX, calX, trigX, testX]);
model.dispose();
