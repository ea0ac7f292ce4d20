/**
 * Backend set-up. Every entry point (CLI command, worker, test) calls `initBackend` once before
 * creating a tensor. wasm is the default in Node; cpu is the fallback; any other registered tfjs
 * backend (webgl, webgpu, tensorflow) is accepted by name so the same code runs everywhere.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { ParryError } from '../errors.js';
import { registerParryKernels } from './kernels/index.js';
import { packageRoot } from './paths.js';

export const DEFAULT_BACKEND = 'wasm';

/** The backend asked for: explicit name, else $PARRY_BACKEND, else wasm. */
export function resolveBackendName(name?: string): string {
  return name ?? process.env.PARRY_BACKEND ?? DEFAULT_BACKEND;
}

/** Selects and readies a backend; registers parry's kernels first. Returns the backend's name. */
export async function initBackend(name?: string): Promise<string> {
  const wanted = resolveBackendName(name);
  await registerGradients();
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
  // The cpu backend prints an "install tfjs-node" banner on first use; a library stays quiet.
  const backend = tf.backend() as { firstUse?: boolean };
  if (backend.firstUse === true) backend.firstUse = false;
  return wanted;
}

let gradientsRegistered = false;

/**
 * tfjs-core registers its gradients only from `dist/register_all_gradients.js`, an ES module tree
 * plain Node cannot load (its imports lack file extensions); the umbrella package bundles it.
 * `npm run build` bundles it into dist/vendor (scripts/bundle-gradients.mjs); importing the bundle
 * registers every gradient in tfjs's global registry, shared with the tfjs-core parry uses.
 */
async function registerGradients(): Promise<void> {
  if (gradientsRegistered) return;
  const bundle = join(packageRoot(), 'dist', 'vendor', 'tfjs-gradients.js');
  if (!existsSync(bundle)) {
    throw new ParryError('INTERNAL', `backend: ${bundle} is missing; run \`npm run build\` first`);
  }
  await import(pathToFileURL(bundle).href);
  gradientsRegistered = true;
}
