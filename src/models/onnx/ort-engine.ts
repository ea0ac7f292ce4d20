/**
 * ONNX Runtime behind a classifier: one session for the logits and one for the vector-Jacobian
 * product of the generated gradient graph (src/engine/onnx/gradient.ts). Inputs arrive in parry's
 * layout (NHWC) and raw input space; the engine applies the classifier's normalisation and layout
 * as `logits` does, and maps the gradient back (through the normalisation: dx = dz / std).
 */
import * as tf from '@tensorflow/tfjs-core';
import { HEAD_ONEHOT, HEAD_SIGN, type LossHead, vjpGraph } from '../../engine/onnx/gradient.js';
import type { OnnxModel } from '../../engine/onnx/ir.js';
import { type Float32Value, OrtSession } from '../../engine/ort/session.js';
import { ParryError } from '../../errors.js';
import type { NativeEngine } from '../classifier.js';
import { writeOnnx } from './graph.js';
import type { Layout } from './network.js';

export interface OrtEngineSetup {
  /** Every value's shape at batch 1 (OnnxNetwork.valueShapes). */
  shapes: Map<string, number[]>;
  layout: Layout;
  mean?: number[];
  std?: number[];
  /** Inputs fed to every run besides x (the weights of a model being trained), by name. */
  feeds?: () => Record<string, Float32Value>;
}

/** An ORT engine for `model`; `source` names it in errors. */
export function createOrtEngine(
  model: OnnxModel,
  source: string,
  setup: OrtEngineSetup,
): NativeEngine {
  let gradient: OnnxModel;
  try {
    gradient = vjpGraph(model, setup.shapes);
  } catch (e) {
    if (!(e instanceof ParryError && e.code === 'UNSUPPORTED')) throw e;
    throw new ParryError(
      'UNSUPPORTED',
      `${source}: engine ort: ${e.message}; --engine tfjs runs it on tfjs ops`,
      { cause: e },
    );
  }
  const forward = OrtSession.create(writeOnnx(model), source);
  let backward: OrtSession;
  try {
    backward = OrtSession.create(writeOnnx(gradient), `${source} (gradient)`);
  } catch (e) {
    forward.release();
    throw e;
  }
  // One session per loss head, made on first use.
  const heads = new Map<string, OrtSession>();
  const headSession = (head: LossHead) => {
    const key = `${head.kind}:${head.marginWeight}`;
    let session = heads.get(key);
    if (session === undefined) {
      const graph = vjpGraph(model, setup.shapes, undefined, head);
      session = OrtSession.create(writeOnnx(graph), `${source} (${head.kind} gradient)`);
      heads.set(key, session);
    }
    return session;
  };
  const input = model.graph.inputs[0].name;
  const output = model.graph.outputs[0].name;
  const mean = setup.mean ? tf.keep(tf.tensor1d(setup.mean)) : undefined;
  const std = setup.std ? tf.keep(tf.tensor1d(setup.std)) : undefined;
  const nchw = setup.layout === 'NCHW';
  /** x (NHWC, raw) as the graph's input values, with the extra feeds. */
  const feed = (x: tf.Tensor) => {
    const z = tf.tidy(() => {
      let v = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
      if (mean) v = tf.sub(v, mean);
      if (std) v = tf.div(v, std);
      return v.rank === 4 && nchw ? tf.transpose(v, [0, 3, 1, 2]) : v;
    });
    const value = { data: z.dataSync() as Float32Array, dims: [...z.shape] };
    z.dispose();
    return { ...setup.feeds?.(), [input]: value };
  };
  /** The input gradient of a run's outputs, back in parry's layout and raw input space. */
  const gradientOut = (out: Record<string, { data: Float32Array; dims: number[] }>) => {
    const g = out[`d_${input}`];
    return tf.tidy(() => {
      let dz: tf.Tensor = tf.tensor(g.data, g.dims);
      if (dz.rank === 4 && nchw) dz = tf.transpose(dz, [0, 2, 3, 1]);
      return std ? tf.div(dz, std) : dz;
    });
  };
  return {
    name: 'ort',
    logits(x) {
      const out = forward.run(feed(x));
      const l = out[output];
      return tf.tensor2d(l.data, [l.dims[0], l.dims[1]]);
    },
    vjp(x, cotangent) {
      const seed = { data: cotangent.dataSync() as Float32Array, dims: [...cotangent.shape] };
      return gradientOut(backward.run({ ...feed(x), [`d_${output}`]: seed }));
    },
    lossGradient(x, goal, loss) {
      const session = headSession({ kind: loss.kind, marginWeight: loss.marginWeight });
      const k = model.graph.outputs[0].shape[1] ?? setup.shapes.get(output)![1];
      const onehot = tf.tidy(() => tf.cast(tf.oneHot(tf.cast(goal, 'int32'), k), 'float32'));
      const feeds = {
        ...feed(x),
        [HEAD_ONEHOT]: { data: onehot.dataSync() as Float32Array, dims: [...onehot.shape] },
        [HEAD_SIGN]: { data: Float32Array.of(loss.targeted ? -1 : 1), dims: [1] },
      };
      onehot.dispose();
      return gradientOut(session.run(feeds));
    },
    dispose() {
      tf.dispose([mean, std].filter((t) => t !== undefined));
      for (const s of [forward, backward, ...heads.values()]) s.release();
      heads.clear();
    },
  };
}

/**
 * `engine`'s logits for x as a tfjs tensor whose gradient in x is the engine's vector-Jacobian
 * product, so tfjs code differentiating a classifier's `logits` runs on the engine unchanged.
 * Caller owns the result.
 */
export function engineLogits(engine: NativeEngine, x: tf.Tensor): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [z, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([z]);
    return {
      value: engine.logits(z),
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) => engine.vjp(saved, dy as tf.Tensor2D),
    };
  });
  return tf.tidy(() => f(x.dtype === 'float32' ? x : tf.cast(x, 'float32')) as tf.Tensor2D);
}
