/**
 * The conv2d filter gradient as a hand-written wasm SIMD loop nest.
 *
 * Why not XNNPACK: a filter gradient is a GEMM whose reduction runs over batch x height x width
 * (73,728 terms for cnn-small's second conv at batch 128), so one of its operands is as large as
 * the activations. XNNPACK must pack such an operand as "weights" on every call, at 10-30 ns per
 * element on this backend, which alone costs more than the forward conv; these loops read the
 * NHWC tensors where they lie instead. Measured on cnn-small conv2 (batch 128): ~25 GFLOP/s,
 * against ~22 GFLOP/s for XNNPACK's forward conv. Without wasm SIMD the same loops run in JS.
 */
import { blocks, compiled, type Heap } from './simd-runtime.js';
import { FuncBuilder, T } from './wasm-asm.js';

/** Geometry of a stride-`s` valid correlation over a pre-padded NHWC input. */
export interface FilterGradGeometry {
  batch: number;
  outH: number;
  outW: number;
  /** padded input height and width */
  inH: number;
  inW: number;
  strideH: number;
  strideW: number;
  dilationH: number;
  dilationW: number;
  filterH: number;
  filterW: number;
}

/**
 * Conv2D filter-gradient loops for one image: dw[i,j,ci,co] += sum_{y,x}
 * x[y*sh + i, x*sw + j, ci] * dy[y, x, co] over a block of `rows` input channels and `lanes`
 * output channels (lanes = 4*vecs, or one scalar lane when vecs = 0). Each (y, i, j, block) step
 * keeps rows x vecs accumulators in registers across one output row; one output row of dy and
 * kh rows of x stay in L1 across all blocks.
 * Params: x, dy, dw, outH, outW, rowBytes, cin, cout, kh, kw, sh, sw, ci0, ci1, co0, co1.
 */
function convFilterGradFunc(rows: number, vecs: number): FuncBuilder {
  const f = new FuncBuilder('run', 16);
  const [x, dy, dw, outH, outW, rowBytes, cin, cout, kh, kw, sh, sw, ci0, ci1, co0, co1] =
    Array.from({ length: 16 }, (_, i) => i);
  const scalar = vecs === 0;
  const lanes = scalar ? 1 : 4 * vecs;
  const nv = Math.max(vecs, 1);
  const L = () => f.local();
  const [y, i, j, ci, co, xi, xp, dp, xRow, dyRow, xBase, wBase, cin4, cout4, xStep] = Array.from(
    { length: 15 },
    L,
  );
  const wRow = Array.from({ length: rows }, L);
  const vt = scalar ? T.f32 : T.v128;
  const acc = Array.from({ length: rows * nv }, () => f.local(vt));
  const dv = Array.from({ length: nv }, () => f.local(vt));
  const sp = f.local(vt);
  const load = (off: number) => (scalar ? f.f32Load(off) : f.vLoad(off));
  const store = (off: number) => (scalar ? f.f32Store(off) : f.vStore(off));

  f.get(cin).i32(4).mul().set(cin4);
  f.get(cout).i32(4).mul().set(cout4);
  f.get(sw).get(cin4).mul().set(xStep);
  f.range(y, outH);
  f.get(dy).get(y).get(outW).mul().get(cout4).mul().add().set(dyRow);
  f.get(x).get(y).get(sh).mul().get(rowBytes).mul().add().set(xRow);
  f.range(i, kh);
  f.range(j, kw);
  f.get(xRow).get(i).get(rowBytes).mul().add().get(j).get(cin4).mul().add().set(xBase);
  f.get(dw).get(i).get(kw).mul().get(j).add().get(cin).mul().get(cout4).mul().add().set(wBase);
  f.span(ci, ci0, ci1, rows, rows);
  f.span(co, co0, co1, lanes, lanes);
  // acc[r][v] = dw[i, j, ci + r, co + 4v ..]
  for (let r = 0; r < rows; r++) {
    f.get(wBase).get(ci).i32(r).add().get(cout4).mul().add().get(co).i32(4).mul().add();
    f.set(wRow[r]);
    for (let v = 0; v < nv; v++) {
      f.get(wRow[r]);
      load(16 * v).set(acc[r * nv + v]);
    }
  }
  f.get(xBase).get(ci).i32(4).mul().add().set(xp);
  f.get(dyRow).get(co).i32(4).mul().add().set(dp);
  f.range(xi, outW);
  // acc[r][v] += x[.., ci + r] * dy[.., co + 4v ..]
  for (let v = 0; v < nv; v++) {
    f.get(dp);
    load(16 * v).set(dv[v]);
  }
  for (let r = 0; r < rows; r++) {
    f.get(xp);
    if (scalar) f.f32Load(4 * r);
    else f.vLoadSplat(4 * r);
    f.set(sp);
    for (let v = 0; v < nv; v++) {
      const a = acc[r * nv + v];
      f.get(a).get(sp).get(dv[v]);
      if (scalar) f.f32Mul().f32Add();
      else f.vMul().vAdd();
      f.set(a);
    }
  }
  f.addLocal(xp, xStep).addLocal(dp, cout4);
  f.next(); // xi
  for (let r = 0; r < rows; r++) {
    for (let v = 0; v < nv; v++) {
      f.get(wRow[r]).get(acc[r * nv + v]);
      store(16 * v);
    }
  }
  f.next().next(); // co, ci
  f.next().next(); // j, i
  f.next(); // y
  return f;
}

/**
 * dw[i,j,ci,co] += sum over batch, y, x of x[b, y*sh+i, x*sw+j, ci] * dy[b, y, x, co].
 * `x` is already padded (its spatial size is g.inH x g.inW); `dw` must hold zeros on entry.
 * Offsets are byte offsets into the heap; `views` reads them as Float32Arrays for the fallback.
 */
export function convFilterGrad(
  heap: Heap,
  views: () => { x: Float32Array; dy: Float32Array; dw: Float32Array },
  offsets: { x: number; dy: number; dw: number },
  g: FilterGradGeometry,
  cin: number,
  cout: number,
): void {
  const ciBlocks = blocks(cin, [4, 3, 2, 1]);
  const coBlocks = blocks(cout, [8, 4, 1]);
  const fns = ciBlocks.flatMap(([ci0, ci1, rows]) =>
    coBlocks.map(([co0, co1, lanes]) => {
      const vecs = lanes === 1 ? 0 : lanes / 4;
      const fn = compiled(heap, `cf${rows}x${vecs}`, () => convFilterGradFunc(rows, vecs));
      return { fn, args: [ci0, ci1, co0, co1] };
    }),
  );
  if (fns.some((k) => k.fn == null)) {
    const v = views();
    convFilterGradJs(v.x, v.dy, v.dw, g, cin, cout);
    return;
  }
  const xImage = g.inH * g.inW * cin * 4;
  const dyImage = g.outH * g.outW * cout * 4;
  const rowBytes = g.inW * cin * 4;
  const common = [g.outH, g.outW, rowBytes, cin, cout, g.filterH, g.filterW, g.strideH, g.strideW];
  // One call per image: V8 runs a fresh wasm function in its baseline tier and swaps in the
  // optimised code only between calls, so one call over the whole batch would stay slow.
  for (let b = 0; b < g.batch; b++) {
    for (const { fn, args } of fns) {
      fn!(offsets.x + b * xImage, offsets.dy + b * dyImage, offsets.dw, ...common, ...args);
    }
  }
}

/** The same sums in plain JS (no SIMD). */
function convFilterGradJs(
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  g: FilterGradGeometry,
  cin: number,
  cout: number,
): void {
  for (let b = 0; b < g.batch; b++) {
    for (let y = 0; y < g.outH; y++) {
      for (let xo = 0; xo < g.outW; xo++) {
        const dyAt = ((b * g.outH + y) * g.outW + xo) * cout;
        for (let i = 0; i < g.filterH; i++) {
          for (let j = 0; j < g.filterW; j++) {
            const xAt = ((b * g.inH + y * g.strideH + i) * g.inW + xo * g.strideW + j) * cin;
            const wAt = (i * g.filterW + j) * cin * cout;
            for (let ci = 0; ci < cin; ci++) {
              const xv = x[xAt + ci];
              const w0 = wAt + ci * cout;
              for (let co = 0; co < cout; co++) dw[w0 + co] += xv * dy[dyAt + co];
            }
          }
        }
      }
    }
  }
}
