/**
 * `loadClassifier(dir)`: a tfjs model directory (LayersModel or GraphModel), or an ONNX file
 * (`model.onnx`, or a directory holding one; run with tfjs ops: src/models/onnx), as a Classifier.
 * A final softmax is replaced by linear before the model is built, so `logits` are logits
 * (gradient attacks through softmax outputs saturate; the classifier records
 * `outputWasSoftmax` so reports can say so).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type GraphModel, loadGraphModel } from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../errors.js';
import { checkEngineChoice, type EngineChoice, engineFromEnvironment } from './engine-choice.js';
import { fileHandler, MODEL_JSON } from './io.js';
import { readParryMetadata } from './metadata.js';
import { exportOnnx } from './onnx/from-layers.js';
import { readOnnx } from './onnx/graph.js';
import { OnnxNetwork, readOnnxMetadata } from './onnx/network.js';
import { createOrtEngine } from './onnx/ort-engine.js';
import {
  type LayerInfo,
  type ModelFormat,
  modelInputShape,
  TfjsClassifier,
  type TfjsClassifierOptions,
} from './tfjs-classifier.js';
import { linearizeGraphSoftmax, linearizeLayersSoftmax, linearizeOnnxSoftmax } from './topology.js';

export interface LoadClassifierOptions {
  /** Override the stored parry metadata. */
  bounds?: [number, number];
  mean?: number[];
  std?: number[];
  classNames?: string[];
  /** Needed only when the model leaves input dimensions unknown. */
  inputShape?: number[];
  /**
   * 'ort': run logits and input gradients on ONNX Runtime (native kernels) — an ONNX model as it
   * is, a LayersModel through its ONNX export; an op without a gradient rule is refused by name.
   * 'tfjs' (alias 'wasm'): tfjs ops on the active backend. 'auto': ORT when the model's ops are
   * all covered, else tfjs. Default: $PARRY_ENGINE, else 'auto'.
   */
  engine?: EngineChoice;
}

function detectFormat(artifacts: tf.io.ModelArtifacts, source: string): ModelFormat {
  const topology = artifacts.modelTopology as Record<string, unknown>;
  if (artifacts.format === 'graph-model' || Array.isArray(topology.node)) return 'graph-model';
  if (
    artifacts.format === 'layers-model' ||
    typeof topology.class_name === 'string' ||
    topology.model_config != null
  ) {
    return 'layers-model';
  }
  throw new ParryError(
    'BAD_FILE',
    `loadClassifier: ${source} is neither a LayersModel nor a GraphModel ` +
      `(format ${JSON.stringify(artifacts.format)})`,
  );
}

/** Runs a tfjs build step, turning its errors into ParryErrors that name the file. */
async function building<T>(source: string, step: () => Promise<T> | T): Promise<T> {
  try {
    return await step();
  } catch (e) {
    if (e instanceof ParryError) throw e;
    const message = String((e as Error)?.message ?? e).split('\n')[0];
    const unsupported = /unknown (layer|op)|not (yet )?(supported|implemented)|unsupported/i;
    const code = unsupported.test(message) ? 'UNSUPPORTED' : 'BAD_FILE';
    throw new ParryError(code, `loadClassifier: cannot build the model in ${source}: ${message}`, {
      cause: e,
    });
  }
}

/** Nodes other than inputs and constants, with the sizes of the constants each one reads. */
function graphLayers(artifacts: tf.io.ModelArtifacts): LayerInfo[] {
  type Node = { name: string; op: string; input?: string[] };
  const nodes = (artifacts.modelTopology as { node?: Node[] }).node ?? [];
  const sizes = new Map(
    (artifacts.weightSpecs ?? []).map((s) => [s.name, s.shape.reduce((a, b) => a * b, 1)]),
  );
  return nodes
    .filter((n) => n.op !== 'Const' && n.op !== 'Placeholder')
    .map((n) => ({
      name: n.name,
      className: n.op,
      outputShape: null,
      params: (n.input ?? []).reduce((a, i) => a + (sizes.get(i.split(':')[0]) ?? 0), 0),
    }));
}

/** Output width of a GraphModel, found by running one zero example. */
async function probeNumClasses(model: GraphModel, inputShape: number[], source: string) {
  const shape = await building(source, () =>
    tf.tidy(() => {
      const out = model.execute(tf.zeros([1, ...inputShape]));
      return (Array.isArray(out) ? out[0] : out).shape;
    }),
  );
  if (shape.length !== 2) {
    throw new ParryError(
      'UNSUPPORTED',
      `loadClassifier: ${source} maps one example to shape ${JSON.stringify(shape)}, ` +
        'not [1, numClasses]',
    );
  }
  return shape[1];
}

/**
 * Refuses a weight holding NaN or infinity: such a model predicts garbage, and an attack on it
 * would report it "perfectly robust".
 */
function checkFinite(name: string, data: ArrayLike<number>, source: string): void {
  let bad = 0;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) bad++;
  if (bad > 0) {
    throw new ParryError(
      'BAD_FILE',
      `loadClassifier: ${source}: weight '${name}' has ${bad} of ${data.length} values NaN or infinite`,
    );
  }
}

/** `checkFinite` for every floating-point weight of a tfjs model's artifacts. */
function checkFiniteArtifacts(artifacts: tf.io.ModelArtifacts, source: string): void {
  if (artifacts.weightSpecs == null || artifacts.weightData == null) return;
  const weights = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  try {
    for (const [name, t] of Object.entries(weights)) {
      if (t.dtype === 'float32') checkFinite(name, t.dataSync(), source);
    }
  } finally {
    tf.dispose(Object.values(weights));
  }
}

const memoryHandler = (artifacts: tf.io.ModelArtifacts): tf.io.IOHandler => ({
  load: async () => artifacts,
});

/** Builds the classifier, freeing the model if the options turn out to be invalid. */
function wrap(model: tfl.LayersModel | GraphModel | OnnxNetwork, opts: TfjsClassifierOptions) {
  try {
    return new TfjsClassifier(model, opts);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * Loads `dir/model.json` (+ shards) as a TfjsClassifier. bounds / mean / std / classNames come
 * from `opts`, else the `parry` user metadata, else defaults (bounds [0, 1], no normalisation).
 * Errors: 'BAD_FILE' for missing or malformed files, 'UNSUPPORTED' for models parry cannot run.
 * The caller owns the classifier (`dispose()` frees its weights).
 */
export async function loadClassifier(
  dir: string,
  opts: LoadClassifierOptions = {},
): Promise<TfjsClassifier> {
  const engine = checkEngineChoice(
    opts.engine ?? engineFromEnvironment(),
    'loadClassifier: engine',
  );
  const classifier = await loadTfjsClassifier(dir, opts);
  if (engine === 'ort' || engine === 'auto') {
    try {
      attachOrt(classifier, dir);
    } catch (e) {
      // auto: a model ORT cannot run (an op without a rule, a GraphModel) stays on tfjs.
      if (!(engine === 'auto' && e instanceof ParryError && e.code === 'UNSUPPORTED')) {
        classifier.dispose();
        throw e;
      }
    }
  }
  used.add(classifier.engine?.name ?? 'tfjs');
  return classifier;
}

const used = new Set<string>();

/** The engines the models loaded in this thread run on ('ort', 'tfjs'), sorted. */
export function enginesUsed(): string[] {
  return [...used].sort();
}

/** Attaches ONNX Runtime to `classifier` (its ONNX graph, or its LayersModel exported to one). */
function attachOrt(classifier: TfjsClassifier, source: string): void {
  if (classifier.format === 'graph-model') {
    throw new ParryError(
      'UNSUPPORTED',
      `engine ort: ${source} is a GraphModel; export runs LayersModels and ONNX files`,
    );
  }
  const network =
    classifier.onnx ?? new OnnxNetwork(exportOnnx(classifier), source, { layout: 'NCHW' });
  try {
    classifier.engine = createOrtEngine(network.model, source, {
      shapes: network.valueShapes(),
      layout: network.layout,
      mean: classifier.mean,
      std: classifier.std,
    });
  } finally {
    if (network !== classifier.onnx) network.dispose();
  }
}

async function loadTfjsClassifier(
  dir: string,
  opts: LoadClassifierOptions,
): Promise<TfjsClassifier> {
  if (dir.endsWith('.onnx')) return loadOnnxClassifier(dir, opts);
  const onnxFile = path.join(dir, 'model.onnx');
  if (!existsSync(path.join(dir, MODEL_JSON)) && existsSync(onnxFile)) {
    return loadOnnxClassifier(onnxFile, opts);
  }
  const artifacts = await fileHandler(dir).load();
  const source = path.join(dir, MODEL_JSON);
  const meta = readParryMetadata(artifacts.userDefinedMetadata, source);
  const format = detectFormat(artifacts, source);
  checkFiniteArtifacts(artifacts, source);
  const common: TfjsClassifierOptions = {
    bounds: opts.bounds ?? meta.bounds,
    mean: opts.mean ?? meta.mean,
    std: opts.std ?? meta.std,
    classNames: opts.classNames ?? meta.classNames,
    inputShape: opts.inputShape,
  };
  if (format === 'layers-model') {
    const { topology, replaced } = linearizeLayersSoftmax(artifacts.modelTopology);
    const patched = { ...artifacts, modelTopology: topology };
    const model = await building(source, () => tfl.loadLayersModel(memoryHandler(patched)));
    return wrap(model, { ...common, outputWasSoftmax: replaced });
  }
  const { topology, replaced } = linearizeGraphSoftmax(artifacts.modelTopology);
  const patched = { ...artifacts, modelTopology: topology };
  const model = await building(source, () => loadGraphModel(memoryHandler(patched)));
  try {
    const known = modelInputShape(model);
    const inputShape =
      opts.inputShape ?? (known?.every((d) => d != null) ? (known as number[]) : undefined);
    const numClasses =
      inputShape === undefined ? undefined : await probeNumClasses(model, inputShape, source);
    const layers = graphLayers(artifacts);
    return new TfjsClassifier(model, { ...common, numClasses, layers, outputWasSoftmax: replaced });
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * An ONNX file as a TfjsClassifier. parry's metadata comes from `opts`, else the model's
 * `metadata_props` (key `parry`), else a `parry.json` beside the file, else defaults.
 */
async function loadOnnxClassifier(
  file: string,
  opts: LoadClassifierOptions,
): Promise<TfjsClassifier> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new ParryError(
      'BAD_FILE',
      `loadClassifier: cannot read ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const model = readOnnx(bytes, file);
  const sidecar = path.join(path.dirname(file), 'parry.json');
  if (model.metadata.parry === undefined && existsSync(sidecar)) {
    model.metadata.parry = readFileSync(sidecar, 'utf8');
  }
  const meta = readOnnxMetadata(model, file);
  for (const t of model.graph.initializers.values()) {
    if (t.dtype === 'float32') checkFinite(t.name, t.data, file);
  }
  const { model: linear, replaced } = linearizeOnnxSoftmax(model);
  const network = new OnnxNetwork(linear, file, {
    inputShape: opts.inputShape,
    layout: meta.layout,
  });
  return wrap(network, {
    bounds: opts.bounds ?? meta.bounds,
    mean: opts.mean ?? meta.mean,
    std: opts.std ?? meta.std,
    classNames: opts.classNames ?? meta.classNames,
    outputWasSoftmax: replaced,
  });
}
