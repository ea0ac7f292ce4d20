/**
 * Backend set-up. Every entry point (CLI command, worker, test) calls `initBackend` once before
 * creating a tensor. wasm is the default in Node; cpu is the fallback; any other registered tfjs
 * backend (webgl, webgpu, tensorflow) is accepted by name so the same code runs everywhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
// tfjs-core registers gradients only through this side-effect module (the umbrella package
// imports it; parry depends on core alone).
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { ParryError } from '../errors.js';
import { registerParryKernels } from './kernels/index.js';

export const DEFAULT_BACKEND = 'wasm';

/** The backend asked for: explicit name, else $PARRY_BACKEND, else wasm. */
export function resolveBackendName(name?: string): string {
  return name ?? process.env.PARRY_BACKEND ?? DEFAULT_BACKEND;
}

/** Selects and readies a backend; registers parry's kernels first. Returns the backend's name. */
export async function initBackend(name?: string): Promise<string> {
  const wanted = resolveBackendName(name);
  registerParryKernels();
  if (tf.getBackend() === wanted) return wanted;
  const known = Object.keys(tf.engine().registryFactory);
  if (!known.includes(wanted)) {
    throw new ParryError(
      'BAD_OPTION',
      `backend: unknown backend '${wanted}' (available: ${known.join(', ')})`,
    );
  }
  const ok = await tf.setBackend(wanted);
  if (!ok) throw new ParryError('UNSUPPORTED', `backend: could not initialise '${wanted}'`);
  await tf.ready();
  return wanted;
}
