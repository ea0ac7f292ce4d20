/**
 * parry's own kernels for the tfjs wasm backend, which lacks some gradient kernels and runs
 * others pathologically slowly (timings in each file's header; bench/kernels.ts measures them).
 *
 * `registerParryKernels()` is idempotent and is called by `initBackend`. It registers for 'wasm'
 * only, in tfjs's global kernel registry, so it works before or after the wasm backend is
 * initialised. Kernels it replaces are kept (see `originalKernel`).
 */
import * as tf from '@tensorflow/tfjs-core';
// The wasm package registers its kernels when imported; ours must come after to replace them.
import '@tensorflow/tfjs-backend-wasm';
import { avgPoolGradConfig } from './avg-pool-grad.js';
import { batchMatMulConfig } from './batch-mat-mul.js';
import { compareConfigs } from './compare.js';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2dBackpropInputConfig } from './conv2d-backprop-input.js';
import { depthwiseBackpropFilterConfig } from './depthwise-backprop-filter.js';
import { depthwiseBackpropInputConfig } from './depthwise-backprop-input.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { originals } from './originals.js';
import { selectConfig } from './select.js';
import { sliceConfig } from './slice.js';
import { splitVConfig } from './split-v.js';
import { stridedSliceConfig } from './strided-slice.js';
import { sumConfig } from './sum.js';
import { unpackConfig } from './unpack.js';
import { WASM } from './wasm-backend.js';

export { originalKernel } from './originals.js';
export { useSimdKernels } from './simd-runtime.js';

/** Every kernel parry registers for wasm. */
export const PARRY_KERNELS: readonly tf.KernelConfig[] = [
  conv2dBackpropInputConfig,
  conv2dBackpropFilterConfig,
  depthwiseBackpropInputConfig,
  depthwiseBackpropFilterConfig,
  maxPoolGradConfig,
  avgPoolGradConfig,
  batchMatMulConfig,
  sliceConfig,
  splitVConfig,
  unpackConfig,
  stridedSliceConfig,
  sumConfig,
  selectConfig,
  ...compareConfigs,
];

const MARK = Symbol.for('parry.kernel');
type Marked = tf.KernelConfig & { [MARK]?: true };

function isParry(config: tf.KernelConfig | undefined): boolean {
  return config != null && (config as Marked)[MARK] === true;
}

export function registerParryKernels(): void {
  for (const config of PARRY_KERNELS) {
    const existing = tf.getKernel(config.kernelName, WASM);
    if (existing === config) continue;
    if (existing != null) {
      if (!isParry(existing)) originals().set(config.kernelName, existing);
      tf.unregisterKernel(config.kernelName, WASM);
    }
    (config as Marked)[MARK] = true;
    tf.registerKernel(config);
  }
}
