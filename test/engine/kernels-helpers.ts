/**
 * Shared by the kernel tests: seeded data, running the same kernel on cpu and wasm, errors.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../src/engine/rng.js';

export function randomData(seed: number, shape: number[]): Float32Array {
  const rng = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Runs `f` on backend `name` and returns its result's values; restores the previous backend. */
export async function valuesOn(name: string, f: () => tf.Tensor): Promise<Float32Array> {
  const previous = tf.getBackend();
  await tf.setBackend(name);
  try {
    const t = f();
    const values = (await t.data()) as Float32Array;
    t.dispose();
    return values;
  } finally {
    await tf.setBackend(previous);
  }
}

/** max |a - b| / (max |b| + 1e-6) */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / (scale + 1e-6);
}

export function runKernel(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: object,
): tf.Tensor {
  return tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
}

/** The same kernel on wasm and cpu, from the same seeded inputs. */
export async function kernelOnBoth(
  name: string,
  inputs: Record<string, { shape: number[]; seed: number; data?: Float32Array }>,
  attrs: object,
): Promise<{ wasm: Float32Array; cpu: Float32Array }> {
  const make = () =>
    Object.fromEntries(
      Object.entries(inputs).map(([k, v]) => [
        k,
        tf.tensor(v.data ?? randomData(v.seed, v.shape), v.shape),
      ]),
    );
  const once = () => {
    const ins = make();
    const out = runKernel(name, ins, attrs);
    tf.dispose(Object.values(ins));
    return out;
  };
  return { wasm: await valuesOn('wasm', once), cpu: await valuesOn('cpu', once) };
}
