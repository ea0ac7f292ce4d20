/**
 * The depthwise conv2d filter gradient as hand-written wasm SIMD loops (see simd-conv.ts for
 * why not XNNPACK): channel vectors of x and dy multiply-accumulate in place. Without wasm SIMD
 * the same loops run in JS.
 */
import type { FilterGradGeometry } from './simd-conv.js';
import { blocks, compiled, type Heap } from './simd-runtime.js';
import { FuncBuilder, T } from './wasm-asm.js';

/**
 * Depthwise filter-gradient loops for one image: dw[i,j,q,c] += sum_{y,x}
 * x[y*sh + i*dh, x*sw + j*dw, c] * dy[y, x, q, c] (dy and dw with the multiplier axis q before
 * the channel axis c) over channels [c0, c1) in blocks of 4*vecs lanes (one lane when vecs = 0).
 * Params: x, dy, dw, outH, outW, rowBytes, channels, mult, kh, kw, sh, sw, dh, dw, c0, c1.
 */
function depthwiseFilterGradFunc(vecs: number): FuncBuilder {
  const f = new FuncBuilder('run', 16);
  const [x, dy, dw, outH, outW, rowBytes, ch, mult, kh, kw, sh, sw, dh, dwl, c0, c1] = Array.from(
    { length: 16 },
    (_, i) => i,
  );
  const scalar = vecs === 0;
  const lanes = scalar ? 1 : 4 * vecs;
  const nv = Math.max(vecs, 1);
  const L = () => f.local();
  const [y, i, j, q, c, xi, xp, dp, wp, xBase, dBase, c4, xStep, dStep] = Array.from(
    { length: 14 },
    L,
  );
  const acc = Array.from({ length: nv }, () => f.local(scalar ? T.f32 : T.v128));
  const load = (off: number) => (scalar ? f.f32Load(off) : f.vLoad(off));
  const store = (off: number) => (scalar ? f.f32Store(off) : f.vStore(off));

  f.get(ch).i32(4).mul().set(c4);
  f.get(sw).get(c4).mul().set(xStep);
  f.get(mult).get(c4).mul().set(dStep);
  f.range(y, outH);
  f.range(i, kh);
  f.range(j, kw);
  // xBase = x + (y*sh + i*dh) * rowBytes + j*dw*c4
  f.get(x).get(y).get(sh).mul().get(i).get(dh).mul().add().get(rowBytes).mul().add();
  f.get(j).get(dwl).mul().get(c4).mul().add().set(xBase);
  f.range(q, mult);
  f.get(dy).get(y).get(outW).mul().get(mult).mul().get(q).add().get(c4).mul().add().set(dBase);
  f.span(c, c0, c1, lanes, lanes);
  f.get(dw).get(i).get(kw).mul().get(j).add().get(mult).mul().get(q).add().get(c4).mul().add();
  f.get(c).i32(4).mul().add().set(wp);
  for (let v = 0; v < nv; v++) {
    f.get(wp);
    load(16 * v).set(acc[v]);
  }
  f.get(xBase).get(c).i32(4).mul().add().set(xp);
  f.get(dBase).get(c).i32(4).mul().add().set(dp);
  f.range(xi, outW);
  for (let v = 0; v < nv; v++) {
    f.get(acc[v]).get(xp);
    load(16 * v).get(dp);
    load(16 * v);
    if (scalar) f.f32Mul().f32Add();
    else f.vMul().vAdd();
    f.set(acc[v]);
  }
  f.addLocal(xp, xStep).addLocal(dp, dStep);
  f.next(); // xi
  for (let v = 0; v < nv; v++) {
    f.get(wp).get(acc[v]);
    store(16 * v);
  }
  f.next().next(); // c, q
  f.next().next().next(); // j, i, y
  return f;
}

/**
 * dw[i,j,q,c] += sum over batch, y, x of x[b, y*sh+i*dh, x*sw+j*dw, c] * dy[b, y, x, q, c]:
 * the depthwise filter gradient with the multiplier axis q moved before the channel axis.
 * `x` is already padded; `dw` must hold zeros on entry.
 */
export function depthwiseFilterGrad(
  heap: Heap,
  views: () => { x: Float32Array; dy: Float32Array; dw: Float32Array },
  offsets: { x: number; dy: number; dw: number },
  g: FilterGradGeometry,
  channels: number,
  mult: number,
): void {
  const fns = blocks(channels, [16, 4, 1]).map(([c0, c1, lanes]) => {
    const vecs = lanes === 1 ? 0 : lanes / 4;
    const fn = compiled(heap, `df${vecs}`, () => depthwiseFilterGradFunc(vecs));
    return { fn, args: [c0, c1] };
  });
  if (fns.some((k) => k.fn == null)) {
    const v = views();
    depthwiseFilterGradJs(v.x, v.dy, v.dw, g, channels, mult);
    return;
  }
  const xImage = g.inH * g.inW * channels * 4;
  const dyImage = g.outH * g.outW * mult * channels * 4;
  const rowBytes = g.inW * channels * 4;
  const common = [g.outH, g.outW, rowBytes, channels, mult, g.filterH, g.filterW];
  const steps = [g.strideH, g.strideW, g.dilationH, g.dilationW];
  for (let b = 0; b < g.batch; b++) {
    for (const { fn, args } of fns) {
      fn!(
        offsets.x + b * xImage,
        offsets.dy + b * dyImage,
        offsets.dw,
        ...common,
        ...steps,
        ...args,
      );
    }
  }
}

function depthwiseFilterGradJs(
  x: Float32Array,
  dy: Float32Array,
  dw: Float32Array,
  g: FilterGradGeometry,
  channels: number,
  mult: number,
): void {
  for (let b = 0; b < g.batch; b++) {
    for (let y = 0; y < g.outH; y++) {
      for (let xo = 0; xo < g.outW; xo++) {
        const dyAt = ((b * g.outH + y) * g.outW + xo) * mult * channels;
        for (let i = 0; i < g.filterH; i++) {
          for (let j = 0; j < g.filterW; j++) {
            const row = b * g.inH + y * g.strideH + i * g.dilationH;
            const xAt = (row * g.inW + xo * g.strideW + j * g.dilationW) * channels;
            for (let q = 0; q < mult; q++) {
              const wAt = ((i * g.filterW + j) * mult + q) * channels;
              const dAt = dyAt + q * channels;
              for (let c = 0; c < channels; c++) dw[wAt + c] += x[xAt + c] * dy[dAt + c];
            }
          }
        }
      }
    }
  }
}
