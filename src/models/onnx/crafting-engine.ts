/**
 * ONNX Runtime for a LayersModel whose weights change: the crafting inside adversarial training
 * (7 of PGD-AT's 8 gradient evaluations per step). The model's ONNX export takes its weights as
 * graph inputs — fed on every run, so the sessions are built once per model and each training
 * step only re-reads the current weights (`craftingEngine` does, on every call). Weights fed as
 * inputs cost nothing measurable against weights stored as initializers (cnn-small, batch 128).
 */
import type * as tfl from '@tensorflow/tfjs-layers';
import type { Float32Value } from '../../engine/ort/session.js';
import { ParryError } from '../../errors.js';
import type { NativeEngine } from '../classifier.js';
import { engineFromEnvironment } from '../engine-choice.js';
import { TfjsClassifier } from '../tfjs-classifier.js';
import { exportOnnx } from './from-layers.js';
import type { OnnxModel } from './graph.js';
import { OnnxNetwork } from './network.js';
import { createOrtEngine } from './ort-engine.js';

interface CraftingEngine {
  engine: NativeEngine;
  /** The model seen as a classifier (for the export; never disposed: it owns nothing). */
  view: TfjsClassifier;
  weights: Record<string, Float32Value>;
}

/** One engine per model being trained; null: the model stays on tfjs. */
const engines = new WeakMap<tfl.LayersModel, CraftingEngine | null>();

/** The float initializers of `model` (its weights), as values to feed. */
function floatInitializers(model: OnnxModel): Record<string, Float32Value> {
  const out: Record<string, Float32Value> = {};
  for (const [name, t] of model.graph.initializers) {
    if (t.dtype === 'float32') out[name] = { data: t.data as Float32Array, dims: [...t.dims] };
  }
  return out;
}

function build(model: tfl.LayersModel, bounds: [number, number]): CraftingEngine {
  const view = new TfjsClassifier(model, { bounds });
  const exported = exportOnnx(view);
  const network = new OnnxNetwork(exported, model.name, { layout: 'NCHW' });
  try {
    const weights = floatInitializers(exported);
    const shapes = network.valueShapes();
    const initializers = new Map(exported.graph.initializers);
    for (const [name, w] of Object.entries(weights)) {
      initializers.delete(name);
      shapes.set(name, w.dims);
    }
    const fed: OnnxModel = {
      ...exported,
      graph: {
        ...exported.graph,
        initializers,
        inputs: [
          ...exported.graph.inputs,
          ...Object.entries(weights).map(([name, w]) => ({ name, shape: w.dims })),
        ],
      },
    };
    const state: CraftingEngine = { view, weights, engine: undefined as unknown as NativeEngine };
    state.engine = createOrtEngine(fed, `${model.name} (training)`, {
      shapes,
      layout: 'NCHW',
      feeds: () => state.weights,
    });
    return state;
  } finally {
    network.dispose();
  }
}

/**
 * An ORT engine computing `model`'s logits (inference mode) and input gradients with its current
 * weights, or undefined when the engine choice ($PARRY_ENGINE) is tfjs or, under auto, the model
 * has a layer the export or the gradient rules do not cover. Release with `releaseCraftingEngine`.
 */
export function craftingEngine(
  model: tfl.LayersModel,
  bounds: [number, number],
): NativeEngine | undefined {
  const choice = engineFromEnvironment();
  if (choice === 'tfjs' || choice === 'wasm') return undefined;
  let state = engines.get(model);
  if (state === undefined) {
    try {
      state = build(model, bounds);
    } catch (e) {
      if (!(choice === 'auto' && e instanceof ParryError && e.code === 'UNSUPPORTED')) throw e;
      state = null;
    }
    engines.set(model, state);
  } else if (state !== null) {
    state.weights = floatInitializers(exportOnnx(state.view));
  }
  return state?.engine;
}

/** Releases the sessions `craftingEngine` made for `model`, if any. */
export function releaseCraftingEngine(model: tfl.LayersModel): void {
  engines.get(model)?.engine.dispose();
  engines.delete(model);
}
