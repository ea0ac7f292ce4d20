/**
 * BatchMatMul for wasm when an operand is transposed. tfjs-backend-wasm sends every matmul with
 * transposeA or transposeB (or a batch dimension) to a naive scalar loop; only the plain 2-D
 * product uses XNNPACK. The gradients of a dense layer are exactly the transposed cases: for
 * cnn-small's 9216->128 layer at batch 128, dy*W^T took 177 ms and x^T*dy 583 ms against 13 ms
 * for the forward product.
 *
 * Here a transposed product becomes one plain XNNPACK product, in whichever of two orientations
 * costs less: C = op(A) op(B) directly, or C = (op(B)^T op(A)^T)^T. XNNPACK repacks its right
 * operand on every call (~15 ns per element, measured) while a transpose costs ~3 ns per element,
 * so the cheaper orientation keeps the small operand on the right. Plain and batched products go
 * to wasm's own kernel unchanged (a plain product's right operand is a weight XNNPACK caches).
 */
import * as tf from '@tensorflow/tfjs-core';
import { originalKernel } from './originals.js';
import { type KernelArgs, run, type WasmBackend, withShape, withTemps } from './wasm-backend.js';

const NAME = 'BatchMatMul';
const PACK_COST = 15;
const TRANSPOSE_COST = 3;

function size(shape: number[]): number {
  return shape.reduce((p, n) => p * n, 1);
}

export function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const { inputs, backend, attrs } = args;
  const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
  const original = originalKernel(NAME);
  const batched = size(a.shape.slice(0, -2)) !== 1 || size(b.shape.slice(0, -2)) !== 1;
  const floats = a.dtype === 'float32' && b.dtype === 'float32';
  if ((!transposeA && !transposeB) || batched || !floats) {
    return original(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
  }
  const be = backend as WasmBackend;
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const n = transposeB ? br : bc;
  const outShape = [
    ...tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)),
    m,
    n,
  ];
  const a2 = withShape(a, [ar, ac]);
  const b2 = withShape(b, [br, bc]);
  const direct =
    TRANSPOSE_COST * ((transposeA ? m * k : 0) + (transposeB ? k * n : 0)) + PACK_COST * k * n;
  const flipped =
    TRANSPOSE_COST * ((transposeA ? 0 : m * k) + (transposeB ? 0 : k * n) + m * n) +
    PACK_COST * k * m;

  return withTemps(be, (temps) => {
    const t = (x: tf.TensorInfo) => temps.add(run('Transpose', be, { x }, { perm: [1, 0] }));
    const plain = (left: tf.TensorInfo, right: tf.TensorInfo) =>
      temps.add(
        original({
          inputs: {
            a: withShape(left, [1, ...left.shape]),
            b: withShape(right, [1, ...right.shape]),
          },
          backend: be,
          attrs: { transposeA: false, transposeB: false },
        }) as tf.TensorInfo,
      );
    if (direct <= flipped) {
      const c = plain(transposeA ? t(a2) : a2, transposeB ? t(b2) : b2);
      return withShape(c, outShape);
    }
    // C^T = op(B)^T op(A)^T: op(B)^T is b itself when transposeB, op(A)^T is a when transposeA.
    const ct = plain(transposeB ? b2 : t(b2), transposeA ? a2 : t(a2));
    return withShape(t(withShape(ct, [n, m])), outShape);
  });
}

export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: NAME,
  backendName: 'wasm',
  kernelFunc: batchMatMul as unknown as tf.KernelFunc,
};
