/**
 * Per-example gradient clipping for DP-SGD (Abadi et al. 2016): each example's gradient g_i over
 * all trainable weights is scaled by min(1, C / ‖g_i‖₂), and the scaled gradients are summed.
 * Two exact paths give the same sum:
 *
 * - reference: one forward and backward pass per example (tf.variableGrads on a batch of one),
 *   any layer; the oracle, and slow.
 * - fast: one forward and one backward pass for the whole batch, on a chain of layers whose
 *   trainable layers are rank-2 Dense or Conv2D. The backward pass gives each such layer's
 *   output gradient (with respect to its pre-activation output, perturbed by a zero tensor to
 *   be differentiable there), the forward pass its input; per-example.ts turns the two into
 *   per-example gradient norms (Dense: ‖a_i‖²·‖g_i‖², never forming the gradient; Conv2D: every
 *   example's kernel gradient from one depthwise convolution) and clipped sums. No second
 *   backward pass.
 *
 * Layers with cross-example statistics (BatchNormalization) have no per-example gradient and are
 * refused by name on both paths.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../../errors.js';
import { countCorrect, smoothedCrossEntropy } from '../../objectives/losses.js';
import { affine, perExample, type TrainableStep } from './per-example.js';

export type ClippingPath = 'fast' | 'reference';
/** How one trainable layer's per-example gradient norm is computed. */
export type LayerRule = 'ghost-norm' | 'per-example' | 'reference';

export interface ClippingPlan {
  path: ClippingPath;
  /** Every layer with trainable weights and its rule. */
  layers: { name: string; className: string; rule: LayerRule }[];
  /** Why the fast path is not possible, when it is not. */
  reason?: string;
}

export interface ClipOptions {
  /** C: the largest L2 norm an example's gradient keeps. */
  maxGradNorm: number;
  /** 'auto' (default): fast when the model allows it, else reference. */
  clipping?: ClippingPath | 'auto';
  labelSmoothing?: number;
}

/** The clipped sum of a batch's per-example gradients and what the step reports. Caller owns all. */
export type ClippedSum = {
  /** Σ_i min(1, C/‖g_i‖)·g_i per trainable variable, keyed by variable name. */
  sums: tf.NamedTensorMap;
  /** ‖g_i‖₂ before clipping, [batch]. */
  norms: tf.Tensor1D;
  lossSum: tf.Scalar;
  correct: tf.Scalar;
};

type Step = { kind: 'apply'; layer: tfl.layers.Layer } | TrainableStep;

const CROSS_EXAMPLE = new Set(['BatchNormalization']);

/** Every layer of `model`, nested models' included. */
function allLayers(model: tfl.LayersModel): tfl.layers.Layer[] {
  return model.layers.flatMap((l) => {
    const nested = (l as unknown as { layers?: tfl.layers.Layer[] }).layers;
    return Array.isArray(nested) ? [l, ...allLayers(l as unknown as tfl.LayersModel)] : [l];
  });
}

/** Refuses a model with a layer whose output mixes examples (no per-example gradient exists). */
export function refuseCrossExampleLayers(model: tfl.LayersModel, fn = 'dp-sgd'): void {
  const bad = allLayers(model).find((l) => CROSS_EXAMPLE.has(l.getClassName()));
  if (bad) {
    throw new ParryError(
      'UNSUPPORTED',
      `${fn}: layer '${bad.name}' is a ${bad.getClassName()}: its batch statistics mix examples, so per-example gradients and the DP guarantee do not exist; remove it or use LayerNormalization`,
    );
  }
}

const plans = new WeakMap<tfl.LayersModel, { plan: ClippingPlan; steps?: Step[] }>();

/**
 * Which path and which per-layer rules `model` gets (also refuses BatchNormalization). Computed
 * once per model: changing which layers are trainable afterwards is not seen.
 */
export function clippingPlan(model: tfl.LayersModel): ClippingPlan {
  return planOf(model).plan;
}

function planOf(model: tfl.LayersModel): { plan: ClippingPlan; steps?: Step[] } {
  const cached = plans.get(model);
  if (cached) return cached;
  refuseCrossExampleLayers(model);
  const layers = model.layers.filter((l) => l.getClassName() !== 'InputLayer');
  const trainable = layers.filter((l) => l.trainable && l.trainableWeights.length > 0);
  const steps: Step[] = [];
  let reason: string | undefined;
  const chain =
    model.inputs.length === 1 &&
    model.outputs.length === 1 &&
    layers.every((l) => l.inboundNodes.length === 1);
  if (!chain) reason = 'the model is not a single chain of layers';
  for (const layer of layers) {
    if (reason) break;
    if (!(layer.trainable && layer.trainableWeights.length > 0)) {
      steps.push({ kind: 'apply', layer });
      continue;
    }
    const step = fastStep(layer);
    if (typeof step === 'string') reason = step;
    else steps.push(step);
  }
  const rules = new Map(steps.map((s) => [s.layer, s.kind]));
  const plan: ClippingPlan = {
    path: reason ? 'reference' : 'fast',
    layers: trainable.map((l) => ({
      name: l.name,
      className: l.getClassName(),
      rule: reason ? 'reference' : rules.get(l) === 'dense' ? 'ghost-norm' : 'per-example',
    })),
    ...(reason ? { reason } : {}),
  };
  const entry = { plan, steps: reason ? undefined : steps };
  plans.set(model, entry);
  return entry;
}

/** The fast rule of a trainable layer, or why it has none. */
function fastStep(layer: tfl.layers.Layer): Step | string {
  const cls = layer.getClassName();
  const config = layer.getConfig() as Record<string, unknown>;
  const weight = (suffix: string) =>
    layer.trainableWeights.find((w) => w.originalName.split('/').pop() === suffix)?.read() as
      | tf.Variable
      | undefined;
  const kernel = weight('kernel');
  const bias = weight('bias');
  const activation =
    (layer as unknown as { activation?: TrainableStep['activation'] | null }).activation ??
    undefined;
  if (kernel && layer.trainableWeights.length === (bias ? 2 : 1)) {
    // A node's inputShapes is one shape, or a list of one per input.
    const shapes = layer.inboundNodes[0]?.inputShapes as unknown[] | undefined;
    const inRank = (Array.isArray(shapes?.[0]) ? (shapes[0] as unknown[]) : shapes)?.length;
    if (cls === 'Dense' && inRank === 2) return { kind: 'dense', layer, kernel, bias, activation };
    if (
      cls === 'Conv2D' &&
      (config.padding === 'same' || config.padding === 'valid') &&
      (config.dataFormat ?? 'channelsLast') === 'channelsLast'
    )
      return { kind: 'conv2d', layer, kernel, bias, activation };
  }
  return `layer '${layer.name}' (${cls}) has no exact fast per-example rule`;
}

/**
 * The clipped per-example gradient sum of the batch (see the module comment). `clipping: 'fast'`
 * on a model the fast path cannot take is UNSUPPORTED, naming the layer.
 */
export function clippedGradientSum(
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  opts: ClipOptions,
): ClippedSum {
  const { plan, steps } = planOf(model);
  const want = opts.clipping ?? 'auto';
  if (want === 'fast' && !steps)
    throw new ParryError('UNSUPPORTED', `dp-sgd: no fast clipping path: ${plan.reason}`);
  const smoothing = opts.labelSmoothing ?? 0;
  if (steps && want !== 'reference')
    return fastClipped(steps, x, labels, opts.maxGradNorm, smoothing);
  return referenceClipped(model, x, labels, opts.maxGradNorm, smoothing);
}

/** min(1, C / ‖g‖) per example; a zero gradient keeps factor 1. */
const clipFactors = (norms: tf.Tensor1D, c: number) =>
  tf.minimum(1, tf.div(c, tf.maximum(norms, 1e-30))) as tf.Tensor1D;

function referenceClipped(
  model: tfl.LayersModel,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: number,
  smoothing: number,
): ClippedSum {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const m = x.shape[0];
  let sums: tf.NamedTensorMap = Object.fromEntries(vars.map((v) => [v.name, tf.zerosLike(v)]));
  let lossSum: tf.Scalar = tf.scalar(0);
  let correct: tf.Scalar = tf.scalar(0, 'int32');
  const norms: tf.Scalar[] = [];
  for (let i = 0; i < m; i++) {
    const next = tf.tidy(() => {
      const xi = tf.slice(x, i, 1);
      const yi = tf.slice(labels, i, 1);
      let logits: tf.Tensor2D | undefined;
      const { value, grads } = tf.variableGrads(() => {
        logits = tf.keep(model.apply(xi, { training: true }) as tf.Tensor2D);
        return tf.sum(smoothedCrossEntropy(logits, yi, smoothing)) as tf.Scalar;
      }, vars);
      const norm = tf.sqrt(tf.addN(vars.map((v) => tf.sum(tf.square(grads[v.name])))));
      const factor = tf.minimum(1, tf.div(c, tf.maximum(norm, 1e-30)));
      const added: tf.NamedTensorMap = {};
      for (const v of vars) added[v.name] = tf.add(sums[v.name], tf.mul(grads[v.name], factor));
      const out = {
        sums: added,
        norm: norm as tf.Scalar,
        lossSum: tf.add(lossSum, value) as tf.Scalar,
        correct: tf.add(correct, countCorrect(logits!, yi)) as tf.Scalar,
      };
      logits!.dispose();
      return out;
    });
    tf.dispose([...Object.values(sums), lossSum, correct]);
    ({ sums, lossSum, correct } = next);
    norms.push(next.norm);
  }
  const stacked = (m > 0 ? tf.stack(norms) : tf.zeros([0])) as tf.Tensor1D;
  tf.dispose(norms);
  return { sums, norms: stacked, lossSum, correct };
}

function fastClipped(
  steps: Step[],
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: number,
  smoothing: number,
): ClippedSum {
  const m = x.shape[0];
  const trainable = steps.filter((s): s is TrainableStep => s.kind !== 'apply');
  // Tensors captured inside the gradient function: kept past its scope, freed below.
  const inputs: tf.Tensor[] = [];
  const captured: tf.Tensor[] = [];
  const capture = <T extends tf.Tensor>(t: T): T => {
    if (t !== x) captured.push(tf.keep(t));
    return t;
  };
  let logits: tf.Tensor2D | undefined;
  try {
    return tf.tidy(() => {
      const zeros = trainable.map((s) =>
        tf.zeros([m, ...(s.layer.outputShape as number[]).slice(1)]),
      );
      // Pre-activations z_l = affine_l(a_l) + e_l: the gradient at e = 0 is each layer's g.
      const f = (...es: tf.Tensor[]) => {
        let a = x;
        let k = 0;
        for (const s of steps) {
          if (s.kind === 'apply') {
            a = s.layer.apply(a, { training: true }) as tf.Tensor;
            continue;
          }
          inputs.push(capture(a));
          const z = tf.add(affine(s, a), es[k++]);
          a = s.activation ? s.activation.apply(z) : z;
        }
        logits = capture(a as tf.Tensor2D);
        return tf.sum(smoothedCrossEntropy(logits, labels, smoothing)) as tf.Scalar;
      };
      const { value, grads } = tf.valueAndGrads(f)(zeros);
      const perLayer = trainable.map((s, l) => perExample(s, inputs[l], grads[l]));
      const norms = tf.sqrt(tf.addN(perLayer.map((p) => p.normSq))) as tf.Tensor1D;
      const factors = clipFactors(norms, c);
      const sums: tf.NamedTensorMap = {};
      trainable.forEach((s, l) => {
        const p = perLayer[l];
        sums[s.kernel.name] = p.kernelSum(factors);
        if (s.bias) sums[s.bias.name] = p.biasSum(factors);
      });
      return { sums, norms, lossSum: value, correct: countCorrect(logits!, labels) };
    });
  } finally {
    tf.dispose(captured);
  }
}
