/**
 * AvgPoolGrad for wasm. tfjs-backend-wasm's kernel took 58-77 ms for cnn-small-sized activations
 * (128x24x24x64, 2x2 stride 2) against 6-8 ms for the forward pool; this one runs the SIMD loops
 * of simd-pool.ts.
 *
 * dx[p] = sum over the windows containing p of dy[window] / count[window], where count is the
 * number of input pixels the window covers: the divisor the forward AvgPool uses on both wasm and
 * cpu. (tfjs's own cpu and wasm gradient kernels divide by filterHeight*filterWidth instead, which
 * differs where a 'same' window overlaps the padding: their gradient there is not the derivative
 * of their forward op. The tests check this one against finite differences.)
 * Caller (the engine) owns the output.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { poolGeometry } from './max-pool-grad.js';
import { poolGrad } from './simd-pool.js';
import {
  f32,
  heapOffset,
  type KernelArgs,
  requireFloat32,
  type WasmBackend,
} from './wasm-backend.js';

const NAME = 'AvgPoolGrad';

export function avgPoolGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  const a = attrs as unknown as tf.AvgPoolGradAttrs;
  requireFloat32(NAME, { dy });
  const g = poolGeometry(input.shape, a.filterSize, a.strides, a.pad);
  const be = backend as WasmBackend;
  const dx = be.makeOutput(input.shape, 'float32');
  f32(be, dx).fill(0);
  poolGrad(
    be.wasm,
    () => ({ dy: f32(be, dy), dx: f32(be, dx) }),
    { dy: heapOffset(be, dy), dx: heapOffset(be, dx) },
    g,
  );
  return dx;
}

export const avgPoolGradConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: avgPoolGrad as unknown as tf.KernelFunc,
};
