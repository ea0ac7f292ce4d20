/**
 * A Classifier around a tfjs LayersModel or GraphModel, or an ONNX graph run with tfjs ops. Normalisation (x - mean) / std happens
 * inside `logits`, so attacks work in input space and gradients are taken w.r.t. the raw input.
 */
import { GraphModel } from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { ParryError } from '../errors.js';
import type { Classifier, NativeEngine } from './classifier.js';
import { OnnxNetwork } from './onnx/network.js';
import { engineLogits } from './onnx/ort-engine.js';

export type ModelFormat = 'layers-model' | 'graph-model' | 'onnx';
type Dims = (number | null)[];

export interface LayerInfo {
  name: string;
  /** Layer class (LayersModel) or op (GraphModel). */
  className: string;
  /** Without the batch dimension's value (null); null when unknown (GraphModel). */
  outputShape: Dims | Dims[] | null;
  params: number;
}

export interface ClassifierInfo {
  format: ModelFormat;
  layers: LayerInfo[];
  inputShape: number[];
  numClasses: number;
  params: number;
  bounds: [number, number];
  outputWasSoftmax: boolean;
}

export interface TfjsClassifierOptions {
  /** Valid input range; default [0, 1]. */
  bounds?: [number, number];
  /** Per-channel (last axis) mean and std, length 1 or the number of channels. */
  mean?: number[];
  std?: number[];
  classNames?: string[];
  /** Shape of one example; default read from the model. */
  inputShape?: number[];
  /** Default read from the model's output shape. */
  numClasses?: number;
  /** The stored model ended in softmax, which the loader replaced by linear. */
  outputWasSoftmax?: boolean;
  /** GraphModel only: a summary of its nodes for `info()` (the loader builds it). */
  layers?: LayerInfo[];
}

const fmt = (shape: readonly unknown[]) => JSON.stringify(shape);
const badOption = (message: string) => new ParryError('BAD_OPTION', `TfjsClassifier: ${message}`);

/** The model's input shape without the batch dimension; unknown dims are null. */
export function modelInputShape(model: tfl.LayersModel | GraphModel): Dims | null {
  const inputs = model.inputs;
  if (inputs.length !== 1) {
    throw new ParryError('UNSUPPORTED', `TfjsClassifier: models with ${inputs.length} inputs`);
  }
  const shape = inputs[0].shape as Dims | undefined;
  if (shape == null) return null;
  return shape.slice(1).map((d) => (d == null || d < 0 ? null : d));
}

function resolveInputShape(model: tfl.LayersModel | GraphModel, given?: number[]): number[] {
  const known = modelInputShape(model);
  if (given != null) {
    const ok = given.every((d) => Number.isInteger(d) && d > 0);
    const fits =
      known == null ||
      (known.length === given.length && known.every((d, i) => d == null || d === given[i]));
    if (!ok || !fits) {
      throw badOption(`inputShape ${fmt(given)} does not fit the model's ${fmt(known ?? [])}`);
    }
    return [...given];
  }
  if (known == null || known.some((d) => d == null)) {
    throw new ParryError(
      'UNSUPPORTED',
      `TfjsClassifier: cannot infer the input shape from the model (got ${fmt(known ?? [])}); ` +
        'pass inputShape',
    );
  }
  return known as number[];
}

function resolveNumClasses(model: tfl.LayersModel | GraphModel, given?: number): number {
  if (model.outputs.length !== 1) {
    throw new ParryError(
      'UNSUPPORTED',
      `TfjsClassifier: models with ${model.outputs.length} outputs`,
    );
  }
  const shape = model.outputs[0].shape as Dims | undefined;
  const last = shape?.length === 2 ? shape[1] : null;
  if (given != null) {
    if (!Number.isInteger(given) || given < 1 || (last != null && last > 0 && last !== given)) {
      throw badOption(`numClasses ${given} does not fit the model's output ${fmt(shape ?? [])}`);
    }
    return given;
  }
  if (last == null || last < 1) {
    throw new ParryError(
      'UNSUPPORTED',
      `TfjsClassifier: model output ${fmt(shape ?? [])} is not [batch, numClasses]; pass numClasses`,
    );
  }
  return last;
}

function checkNormalisation(name: string, values: number[] | undefined, channels: number) {
  if (values == null) return;
  if (values.length !== 1 && values.length !== channels) {
    throw badOption(`${name} has ${values.length} values for ${channels} channels`);
  }
  if (!values.every((v) => Number.isFinite(v) && (name !== 'std' || v > 0))) {
    throw badOption(
      `${name} must be finite${name === 'std' ? ' and > 0' : ''}, got ${fmt(values)}`,
    );
  }
}

const constant = (values: number[] | undefined) =>
  values == null ? undefined : tf.keep(tf.tensor1d(values, 'float32'));

export class TfjsClassifier implements Classifier {
  readonly format: ModelFormat;
  /** The wrapped LayersModel (for training); undefined for a GraphModel. */
  readonly layersModel?: tfl.LayersModel;
  readonly graphModel?: GraphModel;
  readonly onnx?: OnnxNetwork;
  /** The native runtime the loader attached (`engine: 'ort'`), if any. */
  engine?: NativeEngine;
  readonly inputShape: number[];
  readonly numClasses: number;
  readonly bounds: [number, number];
  readonly mean?: number[];
  readonly std?: number[];
  readonly classNames?: string[];
  readonly outputWasSoftmax: boolean;
  private readonly meanT?: tf.Tensor1D;
  private readonly stdT?: tf.Tensor1D;
  private readonly graphLayers: LayerInfo[];

  constructor(model: tfl.LayersModel | GraphModel | OnnxNetwork, opts: TfjsClassifierOptions = {}) {
    if (model instanceof OnnxNetwork) {
      this.format = 'onnx';
      this.onnx = model;
      this.inputShape = [...model.inputShape];
      this.numClasses = model.numClasses;
    } else {
      if (model instanceof GraphModel) {
        this.format = 'graph-model';
        this.graphModel = model;
      } else {
        this.format = 'layers-model';
        this.layersModel = model;
      }
      this.inputShape = resolveInputShape(model, opts.inputShape);
      this.numClasses = resolveNumClasses(model, opts.numClasses);
    }
    const bounds = opts.bounds ?? [0, 1];
    if (!(Number.isFinite(bounds[0]) && Number.isFinite(bounds[1]) && bounds[0] < bounds[1])) {
      throw badOption(`bounds must be finite with low < high, got ${fmt(bounds)}`);
    }
    this.bounds = [bounds[0], bounds[1]];
    if (opts.classNames != null && opts.classNames.length !== this.numClasses) {
      throw badOption(`${opts.classNames.length} classNames for ${this.numClasses} classes`);
    }
    const channels = this.inputShape[this.inputShape.length - 1];
    this.mean = opts.mean && [...opts.mean];
    this.std = opts.std && [...opts.std];
    checkNormalisation('mean', opts.mean, channels);
    checkNormalisation('std', opts.std, channels);
    this.meanT = constant(opts.mean);
    this.stdT = constant(opts.std);
    this.classNames = opts.classNames && [...opts.classNames];
    this.outputWasSoftmax = opts.outputWasSoftmax ?? false;
    this.graphLayers = opts.layers ?? [];
  }

  /**
   * Throws 'BAD_INPUT' unless x (a tensor or its shape) is `[batch, ...inputShape]`.
   * Shape only; reads no data.
   */
  checkInput(x: tf.Tensor | readonly number[]): void {
    const s = Array.isArray(x) ? x : (x as tf.Tensor).shape;
    const ok =
      s.length === this.inputShape.length + 1 && this.inputShape.every((d, i) => s[i + 1] === d);
    if (!ok) {
      throw new ParryError(
        'BAD_INPUT',
        `classifier: input shape ${fmt(s)} does not match the model's ${fmt(this.inputShape)}`,
      );
    }
  }

  /**
   * `checkInput`, then NaN/Inf and values outside `bounds` ('BAD_INPUT'). Reads x once: meant
   * for CLI and library boundaries, not for every attack step.
   */
  async validateInput(x: tf.Tensor): Promise<void> {
    this.checkInput(x);
    const values = await x.data();
    const [lo, hi] = this.bounds;
    let nonFinite = 0;
    let outside = 0;
    let firstNonFinite = -1;
    let firstOutside = -1;
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      if (!Number.isFinite(v)) {
        if (nonFinite++ === 0) firstNonFinite = i;
      } else if (v < lo || v > hi) {
        if (outside++ === 0) firstOutside = i;
      }
    }
    if (nonFinite > 0) {
      throw new ParryError(
        'BAD_INPUT',
        `classifier: input has ${nonFinite} NaN/Inf value(s) (first at flat index ` +
          `${firstNonFinite}: ${values[firstNonFinite]})`,
      );
    }
    if (outside > 0) {
      throw new ParryError(
        'BAD_INPUT',
        `classifier: input has ${outside} value(s) outside bounds ${fmt(this.bounds)} (first at ` +
          `flat index ${firstOutside}: ${values[firstOutside]})`,
      );
    }
  }

  /**
   * Logits `[batch, numClasses]` in inference mode, differentiable in x. Caller owns them. With a
   * native engine attached they come from it, and their gradient from its vector-Jacobian product.
   */
  logits(x: tf.Tensor): tf.Tensor2D {
    this.checkInput(x);
    if (this.engine !== undefined) return engineLogits(this.engine, x);
    return tf.tidy(() => {
      let z = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
      if (this.meanT != null) z = tf.sub(z, this.meanT);
      if (this.stdT != null) z = tf.div(z, this.stdT);
      const out =
        this.layersModel != null
          ? this.layersModel.apply(z, { training: false })
          : this.onnx != null
            ? this.onnx.execute(z)
            : this.graphModel!.execute(z);
      return (Array.isArray(out) ? out[0] : out) as tf.Tensor2D;
    });
  }

  info(): ClassifierInfo {
    const common = {
      inputShape: [...this.inputShape],
      numClasses: this.numClasses,
      bounds: [...this.bounds] as [number, number],
      outputWasSoftmax: this.outputWasSoftmax,
    };
    if (this.layersModel != null) {
      const layers = this.layersModel.layers.map((l) => ({
        name: l.name,
        className: l.getClassName(),
        outputShape: l.outputShape as Dims | Dims[],
        params: l.countParams(),
      }));
      return { format: this.format, layers, params: this.layersModel.countParams(), ...common };
    }
    if (this.onnx != null) {
      return {
        format: this.format,
        layers: this.onnx.layers(),
        params: this.onnx.params,
        ...common,
      };
    }
    const weights = Object.values(this.graphModel!.weights).flat();
    const params = weights.reduce((a, t) => a + t.size, 0);
    return {
      format: this.format,
      layers: this.graphLayers.map((l) => ({ ...l })),
      params,
      ...common,
    };
  }

  /** Frees the model's weights and the normalisation constants. */
  dispose(): void {
    this.layersModel?.dispose();
    this.graphModel?.dispose();
    this.onnx?.dispose();
    this.engine?.dispose();
    this.engine = undefined;
    this.meanT?.dispose();
    this.stdT?.dispose();
  }
}
