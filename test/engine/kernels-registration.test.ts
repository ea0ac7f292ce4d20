/**
 * Registration of parry's wasm kernels: idempotent, wasm only, originals kept, and working on a
 * wasm backend initialised after registration (the path where tfjs never ran the replaced
 * kernels' setup).
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';
import {
  originalKernel,
  PARRY_KERNELS,
  registerParryKernels,
} from '../../src/engine/kernels/index.js';
import { kernelOnBoth, relError } from './kernels-helpers.js';

const CONV_ATTRS = { strides: 2, pad: 'same', dataFormat: 'NHWC', inputShape: [2, 9, 9, 3] };

async function checkConvGradients() {
  const dx = await kernelOnBoth(
    'Conv2DBackpropInput',
    { dy: { shape: [2, 5, 5, 4], seed: 1 }, filter: { shape: [3, 3, 3, 4], seed: 2 } },
    CONV_ATTRS,
  );
  expect(relError(dx.wasm, dx.cpu)).toBeLessThan(1e-4);
  const dw = await kernelOnBoth(
    'Conv2DBackpropFilter',
    { x: { shape: [2, 9, 9, 3], seed: 3 }, dy: { shape: [2, 5, 5, 4], seed: 4 } },
    { ...CONV_ATTRS, filterShape: [3, 3, 3, 4] },
  );
  expect(relError(dw.wasm, dw.cpu)).toBeLessThan(1e-4);
}

/** The original kernel on the current wasm backend, disposed and returned as values. */
function originalValues(
  name: string,
  inputs: Record<string, tf.Tensor>,
  attrs: object,
): Float32Array {
  const backend = tf.backend();
  const out = originalKernel(name)({
    inputs,
    backend,
    attrs: attrs as tf.NamedAttrMap,
  }) as tf.TensorInfo;
  const values = backend.readSync(out.dataId) as Float32Array;
  backend.disposeData(out.dataId);
  return values;
}

describe('registerParryKernels', () => {
  it('is idempotent and quiet', () => {
    const warn = vi.spyOn(console, 'warn');
    registerParryKernels();
    registerParryKernels();
    for (const config of PARRY_KERNELS)
      expect(tf.getKernel(config.kernelName, 'wasm')).toBe(config);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it('registers for wasm only', () => {
    for (const config of PARRY_KERNELS) {
      expect(config.backendName).toBe('wasm');
      expect(tf.getKernel(config.kernelName, 'cpu')).not.toBe(config);
    }
  });

  it('keeps the kernels it replaced, and they agree with parry’s', () => {
    const dy = tf.randomNormal([2, 5, 5, 4], 0, 1, 'float32', 1);
    const filter = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2);
    const ours = tf
      .engine()
      .runKernel('Conv2DBackpropInput', { dy, filter }, CONV_ATTRS) as tf.Tensor;
    expect(
      relError(originalValues('Conv2DBackpropInput', { dy, filter }, CONV_ATTRS), ours.dataSync()),
    ).toBeLessThan(1e-4);
    tf.dispose([dy, filter, ours]);
    expect(() => originalKernel('Conv2DBackpropFilter')).toThrow(/no 'Conv2DBackpropFilter'/);
  });

  it('serves a wasm backend initialised after registration', async () => {
    const entry = (
      tf.engine().registryFactory as Record<
        string,
        { factory: () => tf.KernelBackend | Promise<tf.KernelBackend>; priority: number }
      >
    ).wasm;
    tf.removeBackend('wasm');
    tf.registerBackend('wasm', entry.factory, entry.priority);
    registerParryKernels();
    expect(await tf.setBackend('wasm')).toBe(true);
    await checkConvGradients();
    // The replaced kernel's wasm binding is set up on first use on the new backend.
    const dy = tf.randomNormal([2, 5, 5, 4], 0, 1, 'float32', 1);
    const filter = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 2);
    const ours = tf
      .engine()
      .runKernel('Conv2DBackpropInput', { dy, filter }, CONV_ATTRS) as tf.Tensor;
    expect(
      relError(originalValues('Conv2DBackpropInput', { dy, filter }, CONV_ATTRS), ours.dataSync()),
    ).toBeLessThan(1e-4);
    tf.dispose([dy, filter, ours]);
  });
});
