/**
 * The wasm backend's own kernels that parry replaced, for benchmarks and for the cases parry's
 * kernels hand back (other dtypes, batched matmuls).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../errors.js';

// Shared through globalThis like tfjs's own kernel registry, so a second copy of this module (a
// test runner re-evaluating it) still finds the kernels the first one displaced.
const KEY = Symbol.for('parry.wasm.originals');

export function originals(): Map<string, tf.KernelConfig> {
  const g = globalThis as unknown as Record<symbol, Map<string, tf.KernelConfig> | undefined>;
  g[KEY] ??= new Map();
  return g[KEY];
}

const setUp = new WeakMap<tf.KernelConfig, WeakSet<object>>();

/**
 * The wasm backend's own kernel `name` that parry replaced. Its setup (binding the wasm function)
 * runs once per backend here, since tfjs skips setup for kernels unregistered before the backend
 * initialises.
 */
export function originalKernel(name: string): tf.KernelFunc {
  const config = originals().get(name);
  if (config == null) {
    throw new ParryError('UNSUPPORTED', `originalKernel: wasm had no '${name}' kernel to replace`);
  }
  return (args) => {
    let done = setUp.get(config);
    if (done == null) {
      done = new WeakSet();
      setUp.set(config, done);
    }
    const backend = args.backend as object;
    if (config.setupFunc != null && !done.has(backend)) {
      config.setupFunc(backend as tf.KernelBackend);
      done.add(backend);
    }
    return config.kernelFunc(args);
  };
}
