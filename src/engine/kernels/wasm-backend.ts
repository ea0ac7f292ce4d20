/**
 * What parry's kernels need from tfjs-backend-wasm, and small helpers to compose its kernels.
 *
 * A kernel receives and returns `TensorInfo`s (data ids plus shapes), not tensors: intermediates
 * are freed with `backend.disposeData`, never through the engine. `Temps` keeps that honest.
 */
import * as tf from '@tensorflow/tfjs-core';
import { ParryError } from '../../errors.js';

/** The parts of `BackendWasm` (tfjs-backend-wasm 4.x) that parry's kernels use. */
export interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  dataIdMap: { get(dataId: tf.DataId): { memoryOffset: number } | undefined };
  wasm: { asm?: { memory?: unknown } };
}

/** The argument every kernel function receives. */
export interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: object;
  attrs?: tf.NamedAttrMap;
}

export const WASM = 'wasm';

/** Runs the kernel currently registered for wasm under `name` (parry's own if it replaced it). */
export function run(
  name: string,
  backend: WasmBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: object = {},
): tf.TensorInfo {
  const config = tf.getKernel(name, WASM);
  if (config == null) throw new ParryError('UNSUPPORTED', `kernels: wasm has no '${name}' kernel`);
  return config.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function heapOffset(backend: WasmBackend, info: tf.TensorInfo): number {
  const data = backend.dataIdMap.get(info.dataId);
  if (data == null)
    throw new ParryError('INTERNAL', 'kernels: tensor data is not on the wasm heap');
  return data.memoryOffset;
}

/**
 * A Float32Array view of a tensor's data in the wasm heap. Take views only after the last
 * allocation in a kernel: growing the heap detaches every earlier view.
 */
export function f32(backend: WasmBackend, info: tf.TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(info) as Float32Array;
}

/** The same data under another shape, without touching reference counts. */
export function withShape(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** Intermediates of one kernel call; `dispose` frees them all (the kernel's output excepted). */
export class Temps {
  private readonly infos: tf.TensorInfo[] = [];

  constructor(private readonly backend: WasmBackend) {}

  add(info: tf.TensorInfo): tf.TensorInfo {
    this.infos.push(info);
    return info;
  }

  /** A new float32 intermediate. */
  make(shape: number[]): tf.TensorInfo {
    return this.add(this.backend.makeOutput(shape, 'float32'));
  }

  /**
   * Frees every intermediate except one reference to `keep`'s data (a reshaped view of an
   * intermediate may be the kernel's output).
   */
  dispose(keep?: tf.TensorInfo): void {
    let kept = false;
    for (const info of this.infos) {
      if (!kept && keep != null && info.dataId === keep.dataId) kept = true;
      else this.backend.disposeData(info.dataId);
    }
    this.infos.length = 0;
  }
}

/** Runs `body` with a fresh `Temps`, freeing them even when `body` throws. */
export function withTemps(
  backend: WasmBackend,
  body: (temps: Temps) => tf.TensorInfo,
): tf.TensorInfo {
  const temps = new Temps(backend);
  let out: tf.TensorInfo | undefined;
  try {
    out = body(temps);
    return out;
  } finally {
    temps.dispose(out);
  }
}

/** Throws UNSUPPORTED unless the layout is channels-last. */
export function requireNhwc(kernel: string, dataFormat: unknown): void {
  if (dataFormat != null && dataFormat !== 'NHWC') {
    throw new ParryError(
      'UNSUPPORTED',
      `${kernel} (parry wasm kernel): dataFormat must be 'NHWC', got '${String(dataFormat)}'`,
    );
  }
}

/** Throws UNSUPPORTED unless every tensor is float32. */
export function requireFloat32(kernel: string, infos: Record<string, tf.TensorInfo>): void {
  for (const [name, info] of Object.entries(infos)) {
    if (info.dtype !== 'float32') {
      throw new ParryError(
        'UNSUPPORTED',
        `${kernel} (parry wasm kernel): ${name} must be float32, got ${info.dtype}`,
      );
    }
  }
}

/** Throws BAD_INPUT unless `actual` equals `expected`. */
export function requireShape(kernel: string, name: string, actual: number[], expected: number[]) {
  if (actual.length !== expected.length || actual.some((d, i) => d !== expected[i])) {
    throw new ParryError(
      'BAD_INPUT',
      `${kernel}: ${name} must have shape [${expected}], got [${actual}]`,
    );
  }
}
