/**
 * Gradients of max and average pooling as hand-written wasm SIMD loops over NHWC buffers, one
 * output pixel and four channels at a time, branch-free. (A scalar JS argmax mispredicts a branch
 * on every other element of random data: 47 ms for cnn-small's pool gradient against 4 ms for
 * the forward pool.) Without wasm SIMD the same loops run in JS.
 */
import { blocks, compiled, type Heap } from './simd-runtime.js';
import { FuncBuilder, T } from './wasm-asm.js';

/** Pooling geometry for one call; windows are clipped to the input (padding never counts). */
export interface PoolGeometry {
  batch: number;
  inH: number;
  inW: number;
  outH: number;
  outW: number;
  channels: number;
  filterH: number;
  filterW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
}

/**
 * Loops shared by both kinds, for one image: for each output pixel, window rows [ra, rb) and
 * columns [ca, cb) (clipped), then `perBlock` for each block of `lanes` channels in [c0, c1).
 * Params: (x,) dy, dx, outH, outW, inH, inW, channels, fh, fw, sh, sw, padTop, padLeft, c0, c1.
 */
function poolLoops(
  f: FuncBuilder,
  p: Record<string, number>,
  lanes: number,
  perBlock: (v: Record<string, number>) => void,
): void {
  const names = ['oy', 'ox', 'ra', 'rb', 'ca', 'cb', 't', 'ch', 'r', 'col', 'pix', 'c4', 'g'];
  const v = Object.fromEntries(names.map((n) => [n, f.local()]));
  const clamp = (lo: number, hi: number, start: number, size: number, limit: number) => {
    // lo = max(start, 0); hi = min(start + size, limit)
    f.i32(0).get(start).get(start).i32(0).lt().select().set(lo);
    f.get(start).get(size).add().set(v.t);
    f.get(v.t).get(limit).get(v.t).get(limit).lt().select().set(hi);
  };
  f.get(p.channels).i32(4).mul().set(v.c4);
  f.range(v.oy, p.outH);
  f.get(v.oy).get(p.sh).mul().get(p.padTop).i32(-1).mul().add().set(v.r);
  clamp(v.ra, v.rb, v.r, p.fh, p.inH);
  f.range(v.ox, p.outW);
  f.get(v.ox).get(p.sw).mul().get(p.padLeft).i32(-1).mul().add().set(v.col);
  clamp(v.ca, v.cb, v.col, p.fw, p.inW);
  // g = dy + (oy*outW + ox) * channels * 4
  f.get(p.dy).get(v.oy).get(p.outW).mul().get(v.ox).add().get(v.c4).mul().add().set(v.g);
  f.span(v.ch, p.c0, p.c1, lanes, lanes);
  perBlock(v);
  f.next().next().next(); // ch, ox, oy
}

/** for (r = ra; r < rb; r++) for (col = ca; col < cb; col++) { pix = r*inW + col; body } */
function window(
  f: FuncBuilder,
  p: Record<string, number>,
  v: Record<string, number>,
  body: () => void,
) {
  f.span(v.r, v.ra, v.rb);
  f.span(v.col, v.ca, v.cb);
  f.get(v.r).get(p.inW).mul().get(v.col).add().set(v.pix);
  body();
  f.next().next();
}

/** Byte address of channel block `ch` of input pixel `pix` in `base`. */
function at(f: FuncBuilder, base: number, v: Record<string, number>) {
  f.get(base).get(v.pix).get(v.c4).mul().add().get(v.ch).i32(4).mul().add();
}

const PARAMS = [
  'dy',
  'dx',
  'outH',
  'outW',
  'inH',
  'inW',
  'channels',
  'fh',
  'fw',
  'sh',
  'sw',
  'padTop',
  'padLeft',
  'c0',
  'c1',
];

function params(names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((n, i) => [n, i]));
}

/**
 * dx[argmax] += dy per window and channel, the argmax being the first window pixel whose value
 * is strictly greater than all before it (so -inf and NaN never win), as tfjs's cpu kernel does.
 * Vector form: keep the best value and its pixel index per lane (compare + bitselect), then add
 * dy masked by (index == pixel) into every window pixel. `vecs` vectors of 4 lanes per block, or
 * one scalar lane when vecs = 0.
 */
function maxPoolGradFunc(vecs: number): FuncBuilder {
  const names = ['x', ...PARAMS];
  const f = new FuncBuilder('run', names.length);
  const p = params(names);
  const scalar = vecs === 0;
  const n = Math.max(vecs, 1);
  const vt = scalar ? T.f32 : T.v128;
  const it = scalar ? T.i32 : T.v128;
  const best = Array.from({ length: n }, () => f.local(vt));
  const grad = Array.from({ length: n }, () => f.local(vt));
  const idx = Array.from({ length: n }, () => f.local(it));
  const [val, mask, pixv] = [f.local(vt), f.local(it), f.local(it)];
  const addr = f.local();
  poolLoops(f, p, scalar ? 1 : 4 * vecs, (v) => {
    for (let k = 0; k < n; k++) {
      f.f32Const(Number.NEGATIVE_INFINITY);
      if (!scalar) f.vSplatF32();
      f.set(best[k]).i32(-1);
      if (!scalar) f.vSplatI32();
      f.set(idx[k]);
    }
    window(f, p, v, () => {
      at(f, p.x, v);
      f.set(addr).get(v.pix);
      if (!scalar) f.vSplatI32();
      f.set(pixv);
      for (let k = 0; k < n; k++) {
        f.get(addr);
        if (scalar) {
          f.f32Load(4 * k).set(val);
          f.get(val).get(best[k]).f32Gt().set(mask);
          f.get(val).get(best[k]).get(mask).select().set(best[k]);
          f.get(pixv).get(idx[k]).get(mask).select().set(idx[k]);
        } else {
          f.vLoad(16 * k).set(val);
          f.get(val).get(best[k]).vGtF32().set(mask);
          f.get(val).get(best[k]).get(mask).vSelect().set(best[k]);
          f.get(pixv).get(idx[k]).get(mask).vSelect().set(idx[k]);
        }
      }
    });
    for (let k = 0; k < n; k++) {
      f.get(v.g).get(v.ch).i32(4).mul().add();
      if (scalar) f.f32Load(4 * k);
      else f.vLoad(16 * k);
      f.set(grad[k]);
    }
    window(f, p, v, () => {
      at(f, p.dx, v);
      f.set(addr).get(v.pix);
      if (!scalar) f.vSplatI32();
      f.set(pixv);
      for (let k = 0; k < n; k++) {
        f.get(addr).get(addr);
        if (scalar) {
          f.f32Load(4 * k)
            .get(grad[k])
            .f32Const(0)
            .get(idx[k])
            .get(pixv)
            .eq()
            .select();
          f.f32Add().f32Store(4 * k);
        } else {
          f.vLoad(16 * k)
            .get(grad[k])
            .get(idx[k])
            .get(pixv)
            .vEqI32()
            .vAnd()
            .vAdd()
            .vStore(16 * k);
        }
      }
    });
  });
  return f;
}

/** dx[p] += dy / count for every pixel p of each window, count = pixels the window covers. */
function avgPoolGradFunc(vecs: number): FuncBuilder {
  const f = new FuncBuilder('run', PARAMS.length);
  const p = params(PARAMS);
  const scalar = vecs === 0;
  const n = Math.max(vecs, 1);
  const grad = Array.from({ length: n }, () => f.local(scalar ? T.f32 : T.v128));
  const scale = f.local(T.f32);
  const addr = f.local();
  poolLoops(f, p, scalar ? 1 : 4 * vecs, (v) => {
    // scale = 1 / count; an empty window (count 0) never enters the loop below.
    f.f32Const(1).get(v.rb).get(v.ra).i32(-1).mul().add().get(v.cb).get(v.ca).i32(-1).mul().add();
    f.mul().f32FromI32().f32Div().set(scale);
    for (let k = 0; k < n; k++) {
      f.get(v.g).get(v.ch).i32(4).mul().add();
      if (scalar)
        f.f32Load(4 * k)
          .get(scale)
          .f32Mul();
      else
        f.vLoad(16 * k)
          .get(scale)
          .vSplatF32()
          .vMul();
      f.set(grad[k]);
    }
    window(f, p, v, () => {
      at(f, p.dx, v);
      f.set(addr);
      for (let k = 0; k < n; k++) {
        f.get(addr).get(addr);
        if (scalar)
          f.f32Load(4 * k)
            .get(grad[k])
            .f32Add()
            .f32Store(4 * k);
        else
          f.vLoad(16 * k)
            .get(grad[k])
            .vAdd()
            .vStore(16 * k);
      }
    });
  });
  return f;
}

type Views = () => { x?: Float32Array; dy: Float32Array; dx: Float32Array };

/**
 * The gradient of max (x given) or average pooling (x omitted) into `dx`, which must hold
 * zeros on entry. Offsets are byte offsets into the heap; `views` serves the JS fallback.
 */
export function poolGrad(
  heap: Heap,
  views: Views,
  offsets: { x?: number; dy: number; dx: number },
  g: PoolGeometry,
): void {
  const max = offsets.x != null;
  const fns = blocks(g.channels, [16, 4, 1]).map(([c0, c1, lanes]) => {
    const vecs = lanes === 1 ? 0 : lanes / 4;
    const key = `${max ? 'mp' : 'ap'}${vecs}`;
    const fn = compiled(heap, key, () => (max ? maxPoolGradFunc(vecs) : avgPoolGradFunc(vecs)));
    return { fn, range: [c0, c1] };
  });
  if (fns.some((k) => k.fn == null)) {
    poolGradJs(views(), g);
    return;
  }
  const image = g.inH * g.inW * g.channels * 4;
  const outImage = g.outH * g.outW * g.channels * 4;
  const shape = [g.outH, g.outW, g.inH, g.inW, g.channels, g.filterH, g.filterW];
  const steps = [g.strideH, g.strideW, g.padTop, g.padLeft];
  for (let b = 0; b < g.batch; b++) {
    const x = max ? [offsets.x! + b * image] : [];
    for (const { fn, range } of fns) {
      fn!(...x, offsets.dy + b * outImage, offsets.dx + b * image, ...shape, ...steps, ...range);
    }
  }
}

/** The same loops in plain JS. */
function poolGradJs({ x, dy, dx }: ReturnType<Views>, g: PoolGeometry): void {
  const c = g.channels;
  const best = new Float32Array(c);
  const arg = new Int32Array(c);
  for (let b = 0; b < g.batch; b++) {
    for (let oy = 0; oy < g.outH; oy++) {
      const r0 = oy * g.strideH - g.padTop;
      const [ra, rb] = [Math.max(0, r0), Math.min(g.inH, r0 + g.filterH)];
      for (let ox = 0; ox < g.outW; ox++) {
        const c0 = ox * g.strideW - g.padLeft;
        const [ca, cb] = [Math.max(0, c0), Math.min(g.inW, c0 + g.filterW)];
        const o = ((b * g.outH + oy) * g.outW + ox) * c;
        const scale = 1 / ((rb - ra) * (cb - ca));
        best.fill(Number.NEGATIVE_INFINITY);
        arg.fill(-1);
        for (let r = ra; r < rb; r++) {
          for (let col = ca; col < cb; col++) {
            const base = ((b * g.inH + r) * g.inW + col) * c;
            for (let k = 0; k < c; k++) {
              if (x == null) dx[base + k] += dy[o + k] * scale;
              else if (x[base + k] > best[k]) {
                best[k] = x[base + k];
                arg[k] = base + k;
              }
            }
          }
        }
        if (x != null) for (let k = 0; k < c; k++) if (arg[k] >= 0) dx[arg[k]] += dy[o + k];
      }
    }
  }
}
