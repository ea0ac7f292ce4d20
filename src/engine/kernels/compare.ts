/**
 * Equal, NotEqual, Greater, GreaterEqual, Less, LessEqual for wasm on float32 and int32 inputs.
 * tfjs-backend-wasm's compare kernels ran 8-11x slower than Add on the same shapes (28-40 ms for
 * 128x24x24x64), and ~300x slower once an operand broadcasts (1.0 s): that is what the gradient
 * of max/min over axes (global max pooling) does, through Equal(x, max(x) with kept dims). These
 * merge the broadcast into at most three strided levels and run the SIMD rows of
 * simd-elementwise.ts (JS loops without SIMD). Bool inputs go to the original kernels. NaN
 * compares false and unequal, as in tfjs's cpu kernels. Caller (the engine) owns the output.
 */
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel } from './originals.js';
import { type CompareOp, compareRows } from './simd-elementwise.js';
import { heapOffset, type KernelArgs, type WasmBackend } from './wasm-backend.js';

type Heap = Float32Array | Int32Array | Uint8Array;

const TEST: Record<CompareOp, (x: number, y: number) => boolean> = {
  Equal: (x, y) => x === y,
  NotEqual: (x, y) => x !== y,
  Less: (x, y) => x < y,
  Greater: (x, y) => x > y,
  LessEqual: (x, y) => x <= y,
  GreaterEqual: (x, y) => x >= y,
};

/** Output dims (size-1 dims dropped, mergeable neighbours merged) with each input's strides. */
export function broadcastPlan(aShape: number[], bShape: number[], outShape: number[]) {
  const rank = outShape.length;
  const strides = (shape: number[]) => {
    const padded = [...new Array<number>(rank - shape.length).fill(1), ...shape];
    const s = new Array<number>(rank);
    for (let d = rank - 1, acc = 1; d >= 0; d--) {
      s[d] = padded[d] === 1 ? 0 : acc;
      acc *= padded[d];
    }
    return s;
  };
  const [sa, sb] = [strides(aShape), strides(bShape)];
  const dims: { n: number; a: number; b: number }[] = [];
  for (let d = 0; d < rank; d++) {
    if (outShape[d] === 1) continue;
    const last = dims[dims.length - 1];
    const n = outShape[d];
    if (last != null && last.a === sa[d] * n && last.b === sb[d] * n) {
      last.n *= n;
      last.a = sa[d];
      last.b = sb[d];
    } else dims.push({ n, a: sa[d], b: sb[d] });
  }
  return dims.length > 0 ? dims : [{ n: 1, a: 1, b: 1 }];
}

function compareKernel(name: CompareOp): tf.KernelFunc {
  return (args) => {
    const { inputs, backend } = args as KernelArgs;
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const int = a.dtype === 'int32';
    if ((a.dtype !== 'float32' && !int) || b.dtype !== a.dtype) return originalKernel(name)(args);
    const be = backend as WasmBackend;
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = be.makeOutput(outShape, 'bool');
    if (tf.util.sizeFromShape(outShape) === 0) return out;
    const dims = broadcastPlan(a.shape, b.shape, outShape);
    const inner = dims[dims.length - 1];
    const rows = dims.length > 1 ? dims[dims.length - 2] : { n: 1, a: 0, b: 0 };
    const outer = dims.slice(0, -2);
    const simd = compareRows(be.wasm, name, int, inner.a === 0, inner.b === 0);
    const [ao, bo, oo] = [heapOffset(be, a), heapOffset(be, b), heapOffset(be, out)];
    const views = simd == null ? [a, b, out].map((t) => be.typedArrayFromHeap(t)) : [];
    const idx = new Array<number>(outer.length).fill(0);
    const blocks = outer.reduce((p, d) => p * d.n, 1);
    for (let blk = 0; blk < blocks; blk++) {
      let [ai, bi] = [0, 0];
      outer.forEach((d, k) => {
        ai += idx[k] * d.a;
        bi += idx[k] * d.b;
      });
      const oi = blk * rows.n * inner.n;
      if (simd != null) {
        simd(ao + 4 * ai, bo + 4 * bi, oo + oi, rows.n, inner.n, 4 * rows.a, 4 * rows.b);
      } else {
        compareJs(TEST[name], views as Heap[], [ai, bi, oi], rows, inner);
      }
      for (let k = outer.length - 1; k >= 0; k--) {
        if (++idx[k] < outer[k].n) break;
        idx[k] = 0;
      }
    }
    return out;
  };
}

function compareJs(
  test: (x: number, y: number) => boolean,
  [a, b, out]: Heap[],
  [a0, b0, o0]: number[],
  rows: { n: number; a: number; b: number },
  inner: { n: number; a: number; b: number },
): void {
  for (let r = 0, o = o0; r < rows.n; r++) {
    const ai = a0 + r * rows.a;
    const bi = b0 + r * rows.b;
    for (let k = 0; k < inner.n; k++, o++)
      out[o] = test(a[ai + k * inner.a], b[bi + k * inner.b]) ? 1 : 0;
  }
}

export const compareConfigs: tf.KernelConfig[] = (Object.keys(TEST) as CompareOp[]).map((name) => ({
  kernelName: name,
  backendName: 'wasm',
  kernelFunc: compareKernel(name),
}));
