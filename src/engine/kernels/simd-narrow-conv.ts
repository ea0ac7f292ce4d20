/**
 * A stride-1 correlation with few output channels (1-4), as hand-written wasm SIMD. XNNPACK
 * computes output channels in groups of 8, so a conv with one output channel wastes 7/8 of its
 * work: the input gradient of a first layer (grayscale or RGB images, the gradient every evasion
 * attack needs) took 30 ms for cnn-small's conv1 at batch 128 against 8 ms forward.
 *
 * For each output pixel, channel and filter row, the input row segment under the filter
 * (filterW x inChannels floats) is contiguous in NHWC, as is the filter laid out
 * [kh, depth, kw, inChannels]: one long dot product in 4-lane vectors. Windows are clipped at the
 * input's edges, so padding (or cropping, when negative) costs nothing.
 */
import { compiled, type Heap } from './simd-runtime.js';
import { FuncBuilder, T } from './wasm-asm.js';

/** Geometry of one narrow correlation; the filter is [kh, depth, kw, inChannels]. */
export interface NarrowConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  inChannels: number;
  outH: number;
  outW: number;
  depth: number;
  filterH: number;
  filterW: number;
  /** rows / columns of zeros before the input (negative: rows skipped) */
  padTop: number;
  padLeft: number;
}

const F32X4_EXTRACT_LANE = 0x1f;

/**
 * One image: out[oy, ox, d] = sum over i, j, k of x[oy+i-padT, ox+j-padL, k] f[i, d, j, k].
 * Params: x, f, out, outH, outW, inH, inW, inChannels, depth, kh, kw, padT, padL.
 */
function narrowConvFunc(): FuncBuilder {
  const f = new FuncBuilder('run', 13);
  const [x, flt, out, outH, outW, inH, inW, ch, depth, kh, kw, padT, padL] = Array.from(
    { length: 13 },
    (_, i) => i,
  );
  const names = ['oy', 'ox', 'd', 'i', 'e', 'iA', 'iB', 'jA', 'jB', 'len', 'len4', 't'];
  const v = Object.fromEntries(names.map((n) => [n, f.local()]));
  const [px, pf, po, xCol, ch4, rowBytes] = Array.from({ length: 6 }, () => f.local());
  const acc = [0, 1, 2, 3].map(() => f.local(T.v128));
  const s = f.local(T.f32);
  const len16 = f.local();
  // lo = max(a - b, 0) ; hi = min(c, e - b)  with b the running index
  const maxZero = (dst: number, a: number, b: number) => {
    f.get(a).get(b).i32(-1).mul().add().set(v.t);
    f.i32(0).get(v.t).get(v.t).i32(0).lt().select().set(dst);
  };
  const minOf = (dst: number, limit: number, e: number, pad: number, b: number) => {
    f.get(e).get(pad).add().get(b).i32(-1).mul().add().set(v.t); // t = e + pad - b
    f.get(v.t).get(limit).get(v.t).get(limit).lt().select().set(dst);
  };
  f.get(ch).i32(4).mul().set(ch4);
  f.get(inW).get(ch4).mul().set(rowBytes);
  f.get(out).set(po);
  f.range(v.oy, outH);
  maxZero(v.iA, padT, v.oy);
  minOf(v.iB, kh, inH, padT, v.oy);
  f.range(v.ox, outW);
  maxZero(v.jA, padL, v.ox);
  minOf(v.jB, kw, inW, padL, v.ox);
  // len = max(jB - jA, 0) * ch floats, len4 = len & ~3, xCol = (ox + jA - padL) * ch * 4
  f.get(v.jB).get(v.jA).i32(-1).mul().add().get(ch).mul().set(v.len);
  f.get(v.len).i32(0).get(v.len).i32(0).gt().select().set(v.len); // no columns: len = 0
  f.get(v.len).i32(-4).op(0x71).set(v.len4);
  f.get(v.len).i32(-16).op(0x71).set(len16);
  f.get(v.ox).get(v.jA).add().get(padL).i32(-1).mul().add().get(ch4).mul().set(xCol);
  f.range(v.d, depth);
  for (const a of acc) f.f32Const(0).vSplatF32().set(a);
  f.f32Const(0).set(s);
  f.span(v.i, v.iA, v.iB);
  // px = x + (oy + i - padT) * rowBytes + xCol ; pf = flt + ((i*depth + d)*kw + jA) * ch * 4
  f.get(x).get(v.oy).get(v.i).add().get(padT).i32(-1).mul().add().get(rowBytes).mul().add();
  f.get(xCol).add().set(px);
  f.get(flt).get(v.i).get(depth).mul().get(v.d).add().get(kw).mul().get(v.jA).add();
  f.get(ch4).mul().add().set(pf);
  // Four accumulators: one would make every step wait for the previous add.
  f.range(v.e, len16, 16);
  for (let k = 0; k < 4; k++) {
    f.get(acc[k])
      .get(px)
      .vLoad(16 * k)
      .get(pf)
      .vLoad(16 * k)
      .vMul()
      .vAdd()
      .set(acc[k]);
  }
  f.addConst(px, 64).addConst(pf, 64);
  f.next();
  f.span(v.e, len16, v.len4, 4);
  f.get(acc[0]).get(px).vLoad().get(pf).vLoad().vMul().vAdd().set(acc[0]);
  f.addConst(px, 16).addConst(pf, 16);
  f.next();
  f.span(v.e, v.len4, v.len);
  f.get(s).get(px).f32Load().get(pf).f32Load().f32Mul().f32Add().set(s);
  f.addConst(px, 4).addConst(pf, 4);
  f.next();
  f.next(); // i
  // out = s + the four lanes of acc0 + acc1 + acc2 + acc3
  f.get(acc[0]).get(acc[1]).vAdd().get(acc[2]).vAdd().get(acc[3]).vAdd().set(acc[0]);
  f.get(po).get(s);
  for (let lane = 0; lane < 4; lane++) f.get(acc[0]).simd(F32X4_EXTRACT_LANE, lane).f32Add();
  f.f32Store();
  f.addConst(po, 4);
  f.next().next().next(); // d, ox, oy
  return f;
}

/**
 * The narrow correlation over a batch (byte offsets into the heap), or false when wasm SIMD is
 * unavailable (the caller then uses XNNPACK).
 */
export function narrowConv(
  heap: Heap,
  offsets: { x: number; filter: number; out: number },
  g: NarrowConvGeometry,
): boolean {
  const fn = compiled(heap, 'narrowconv', narrowConvFunc);
  if (fn == null) return false;
  const xImage = g.inH * g.inW * g.inChannels * 4;
  const outImage = g.outH * g.outW * g.depth * 4;
  const shape = [g.outH, g.outW, g.inH, g.inW, g.inChannels, g.depth, g.filterH, g.filterW];
  for (let b = 0; b < g.batch; b++) {
    fn(
      offsets.x + b * xImage,
      offsets.filter,
      offsets.out + b * outImage,
      ...shape,
      g.padTop,
      g.padLeft,
    );
  }
  return true;
}
