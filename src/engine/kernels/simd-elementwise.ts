/**
 * Elementwise wasm SIMD loops for the compare, select and sum kernels (compare.ts, select.ts,
 * sum.ts): 16 compares, 8 selects or 16 column sums per step, scalar tails. The functions return
 * false when wasm SIMD is unavailable, and the callers run their JS loops.
 */
import { compiled, type Heap } from './simd-runtime.js';
import { FuncBuilder, T } from './wasm-asm.js';

export type CompareOp = 'Equal' | 'NotEqual' | 'Less' | 'Greater' | 'LessEqual' | 'GreaterEqual';

// Opcodes: [f32x4, i32x4 (signed), f32 scalar, i32 scalar (signed)].
const COMPARE: Record<CompareOp, [number, number, number, number]> = {
  Equal: [0x41, 0x37, 0x5b, 0x46],
  NotEqual: [0x42, 0x38, 0x5c, 0x47],
  Less: [0x43, 0x39, 0x5d, 0x48],
  Greater: [0x44, 0x3b, 0x5e, 0x4a],
  LessEqual: [0x45, 0x3d, 0x5f, 0x4c],
  GreaterEqual: [0x46, 0x3f, 0x60, 0x4e],
};
const I8X16_NARROW_I16X8_S = 0x65;
const I16X8_NARROW_I32X4_S = 0x85;
const I8X16_NEG = 0x61;
const I32X4_NEG = 0xa1;
const V128_LOAD8X8_U = 0x02;
const I32X4_EXTEND_LOW_I16X8_U = 0xa9;
const I32X4_EXTEND_HIGH_I16X8_U = 0xaa;

/**
 * out[r, k] = a[r, k] OP b[r, k] as bytes 0/1, for `rows` rows of `n`; each operand either runs
 * along the row (stride 1) or holds one value per row (`aScalar` / `bScalar`).
 * Params: a, b, out, rows, n, aRowBytes, bRowBytes.
 */
function compareFunc(op: CompareOp, int: boolean, aScalar: boolean, bScalar: boolean): FuncBuilder {
  const f = new FuncBuilder('run', 7);
  const [a, b, out, rows, n, aRow, bRow] = [0, 1, 2, 3, 4, 5, 6];
  const [r, k, pa, pb, po, n16] = [
    f.local(),
    f.local(),
    f.local(),
    f.local(),
    f.local(),
    f.local(),
  ];
  const [sa, sb] = [f.local(T.v128), f.local(T.v128)];
  const m = [0, 1, 2, 3].map(() => f.local(T.v128));
  const [vOp, iOp, fOp, jOp] = COMPARE[op];
  const scalarLoad = () => (int ? f.i32Load() : f.f32Load());
  const operand = (ptr: number, scalar: boolean, splat: number, j: number) => {
    if (scalar) f.get(splat);
    else f.get(ptr).vLoad(16 * j);
  };
  f.get(n).i32(-16).op(0x71).set(n16); // n16 = n & ~15
  f.range(r, rows);
  f.get(a).get(r).get(aRow).mul().add().set(pa);
  f.get(b).get(r).get(bRow).mul().add().set(pb);
  f.get(out).get(r).get(n).mul().add().set(po);
  f.get(pa).vLoadSplat().set(sa);
  f.get(pb).vLoadSplat().set(sb);
  f.range(k, n16, 16);
  for (let j = 0; j < 4; j++) {
    operand(pa, aScalar, sa, j);
    operand(pb, bScalar, sb, j);
    f.simd(int ? iOp : vOp).set(m[j]);
  }
  // four i32x4 masks (-1 / 0) -> sixteen bytes (1 / 0)
  f.get(po).get(m[0]).get(m[1]).simd(I16X8_NARROW_I32X4_S).get(m[2]).get(m[3]);
  f.simd(I16X8_NARROW_I32X4_S).simd(I8X16_NARROW_I16X8_S).simd(I8X16_NEG).vStore();
  if (!aScalar) f.addConst(pa, 64);
  if (!bScalar) f.addConst(pb, 64);
  f.addConst(po, 16);
  f.next();
  f.span(k, n16, n);
  f.get(po).get(pa);
  scalarLoad();
  f.get(pb);
  scalarLoad();
  f.op(int ? jOp : fOp).i32Store8();
  if (!aScalar) f.addConst(pa, 4);
  if (!bScalar) f.addConst(pb, 4);
  f.addConst(po, 1);
  f.next();
  f.next();
  return f;
}

/** Compares row blocks (see compareFunc); false when SIMD is unavailable. */
export function compareRows(
  heap: Heap,
  op: CompareOp,
  int: boolean,
  aScalar: boolean,
  bScalar: boolean,
): ((...args: number[]) => void) | null {
  const key = `cmp${op}${int ? 'i' : 'f'}${aScalar ? 1 : 0}${bScalar ? 1 : 0}`;
  return compiled(heap, key, () => compareFunc(op, int, aScalar, bScalar));
}

/**
 * out[i] = cond[i] ? t[i] : e[i] on 32-bit values, bit-exact. Params: cond, t, e, out, n.
 */
function selectFunc(): FuncBuilder {
  const f = new FuncBuilder('run', 5);
  const [cond, t, e, out, n] = [0, 1, 2, 3, 4];
  const [i, n8, c16] = [f.local(), f.local(), f.local(T.v128)];
  f.get(n).i32(-8).op(0x71).set(n8); // n8 = n & ~7
  f.range(i, n8, 8);
  f.get(cond).get(i).add().simd(V128_LOAD8X8_U, 3, 0).set(c16);
  for (const [half, extend] of [
    [0, I32X4_EXTEND_LOW_I16X8_U],
    [1, I32X4_EXTEND_HIGH_I16X8_U],
  ]) {
    const at = () => f.get(i).i32(4).mul().add();
    f.get(out);
    at();
    f.get(t);
    at();
    f.vLoad(16 * half).get(e);
    at();
    f.vLoad(16 * half);
    f.get(c16)
      .simd(extend)
      .simd(I32X4_NEG)
      .vSelect()
      .vStore(16 * half);
  }
  f.next();
  f.span(i, n8, n);
  const at = (base: number) => f.get(base).get(i).i32(4).mul().add();
  at(out);
  at(t).i32Load();
  at(e).i32Load();
  f.get(cond).get(i).add().i32Load8().select().i32Store();
  f.next();
  return f;
}

export function selectSimd(heap: Heap): ((...args: number[]) => void) | null {
  return compiled(heap, 'select', selectFunc);
}

/**
 * out[o, c] = sum over r of x[o, r, c] for c in [c0, c1), in blocks of 4*vecs lanes (one scalar
 * lane when vecs = 0). Rows are summed 256 at a time before joining the total, which keeps the
 * float32 rounding error near that of pairwise summation. Params: x, out, outer, reduced, inner,
 * c0, c1.
 */
function columnSumFunc(vecs: number): FuncBuilder {
  const f = new FuncBuilder('run', 7);
  const [x, out, outer, reduced, inner, c0, c1] = [0, 1, 2, 3, 4, 5, 6];
  const scalar = vecs === 0;
  const n = Math.max(vecs, 1);
  const lanes = scalar ? 1 : 4 * vecs;
  const [o, c, r0, r, rEnd, p, rowBytes] = Array.from({ length: 7 }, () => f.local());
  const vt = scalar ? T.f32 : T.v128;
  const total = Array.from({ length: n }, () => f.local(vt));
  const part = Array.from({ length: n }, () => f.local(vt));
  const zero = () => (scalar ? f.f32Const(0) : f.f32Const(0).vSplatF32());
  f.get(inner).i32(4).mul().set(rowBytes);
  f.range(o, outer);
  f.span(c, c0, c1, lanes, lanes);
  for (const t of total) zero().set(t);
  f.range(r0, reduced, 256);
  // rEnd = min(r0 + 256, reduced); p = &x[o, r0, c]
  f.get(r0).i32(256).add().set(rEnd);
  f.get(rEnd).get(reduced).get(rEnd).get(reduced).lt().select().set(rEnd);
  f.get(x).get(o).get(reduced).mul().get(r0).add().get(rowBytes).mul().add();
  f.get(c).i32(4).mul().add().set(p);
  for (const t of part) zero().set(t);
  f.span(r, r0, rEnd);
  for (let v = 0; v < n; v++) {
    f.get(part[v]).get(p);
    if (scalar) f.f32Load().f32Add();
    else f.vLoad(16 * v).vAdd();
    f.set(part[v]);
  }
  f.addLocal(p, rowBytes);
  f.next();
  for (let v = 0; v < n; v++) {
    f.get(total[v]).get(part[v]);
    if (scalar) f.f32Add();
    else f.vAdd();
    f.set(total[v]);
  }
  f.next(); // r0
  for (let v = 0; v < n; v++) {
    f.get(out).get(o).get(inner).mul().get(c).add().i32(4).mul().add().get(total[v]);
    if (scalar) f.f32Store();
    else f.vStore(16 * v);
  }
  f.next().next(); // c, o
  return f;
}

export function columnSumSimd(heap: Heap, vecs: number): ((...args: number[]) => void) | null {
  return compiled(heap, `colsum${vecs}`, () => columnSumFunc(vecs));
}
