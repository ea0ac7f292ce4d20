/**
 * Compiles and caches the hand-written wasm SIMD kernels (see simd-conv.ts, simd-pool.ts).
 *
 * Each kernel is its own module (under 4 KB, which browsers still compile synchronously on the
 * main thread) importing the wasm backend's memory, built on first use per memory. Where wasm
 * SIMD is missing, `compiled` returns null and callers run the same loops in JS.
 */
import { buildModule, type FuncBuilder } from './wasm-asm.js';

export type Kernel = (...args: number[]) => void;

/** The slice of the WebAssembly JS API used here (tsconfig's lib has no DOM types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}
interface WasmApi {
  Memory: abstract new (...args: never[]) => WasmMemory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;

let simdEnabled = true;

/** Tests switch the SIMD loops off to exercise the JS fallback. */
export function useSimdKernels(enabled: boolean): void {
  simdEnabled = enabled;
}

const instances = new WeakMap<object, Map<string, Kernel | null>>();

function memoryOf(heap: Heap): WasmMemory | null {
  const memory = heap.asm?.memory;
  return wasmApi != null && memory instanceof wasmApi.Memory ? memory : null;
}

/** The compiled variant `key` for this heap, or null when wasm SIMD is unavailable. */
export function compiled(heap: Heap, key: string, build: () => FuncBuilder): Kernel | null {
  if (!simdEnabled) return null;
  const memory = memoryOf(heap);
  if (memory == null) return null;
  let cache = instances.get(memory);
  if (cache == null) {
    cache = new Map();
    instances.set(memory, cache);
  }
  if (!cache.has(key)) {
    let fn: Kernel | null = null;
    try {
      const shared =
        typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
      const bytes = buildModule([build()], shared);
      const api = wasmApi as WasmApi;
      const instance = new api.Instance(new api.Module(bytes), { env: { memory } });
      fn = instance.exports.run as Kernel;
    } catch {
      fn = null; // no wasm SIMD here (or a compile limit): the JS loops take over
    }
    cache.set(key, fn);
  }
  return cache.get(key) ?? null;
}

/** Splits [0, n) into runs of full blocks of `size` then the remainder. */
export function blocks(n: number, sizes: number[]): [number, number, number][] {
  const out: [number, number, number][] = [];
  let start = 0;
  for (const size of sizes) {
    const end = start + Math.floor((n - start) / size) * size;
    if (end > start) out.push([start, end, size]);
    start = end;
  }
  return out;
}

/** The wasm module object of the backend (`backend.wasm`), which exposes its memory. */
export type Heap = { asm?: { memory?: unknown } };
