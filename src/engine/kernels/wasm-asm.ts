/**
 * A very small WebAssembly assembler: just enough to emit loop nests of 128-bit SIMD
 * multiply-adds over the wasm backend's heap. parry uses it for the gradient kernels XNNPACK
 * cannot do without first packing a huge operand (see simd-conv.ts).
 *
 * A module built here imports the backend's `WebAssembly.Memory` as env.memory, so its functions
 * read and write tensors in place, addressed by the byte offsets tfjs-backend-wasm hands out.
 * Every function takes i32 parameters and returns nothing.
 */

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
export type ValueType = typeof I32 | typeof F32 | typeof V128;
/** A loop step: a constant, or a local holding it. */
export type Step = number | { local: number };
export const T = { i32: I32, f32: F32, v128: V128 } as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function name(s: string): number[] {
  return [...uleb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

/** One function body under construction; emitters chain. Locals are numbered after params. */
export class FuncBuilder {
  private readonly code: number[] = [];
  private readonly localTypes: ValueType[] = [];
  private readonly open: { i: number; step: Step }[] = [];

  constructor(
    readonly exportName: string,
    readonly numParams: number,
  ) {}

  local(type: ValueType = I32): number {
    this.localTypes.push(type);
    return this.numParams + this.localTypes.length - 1;
  }

  /** Raw opcode bytes, for instructions without a named emitter (see the wasm spec). */
  op(...bytes: number[]): this {
    for (const b of bytes) this.code.push(b);
    return this;
  }

  get(i: number): this {
    return this.op(0x20, ...uleb(i));
  }
  set(i: number): this {
    return this.op(0x21, ...uleb(i));
  }
  i32(n: number): this {
    return this.op(0x41, ...sleb(n));
  }
  add(): this {
    return this.op(0x6a);
  }
  mul(): this {
    return this.op(0x6c);
  }
  /** i32.gt_s */
  gt(): this {
    return this.op(0x4a);
  }
  /** i32.ge_s */
  ge(): this {
    return this.op(0x4e);
  }
  /** i32.lt_s */
  lt(): this {
    return this.op(0x48);
  }
  /** i32.eq */
  eq(): this {
    return this.op(0x46);
  }
  /** select: the first of two values if the i32 on top is non-zero, else the second */
  select(): this {
    return this.op(0x1b);
  }
  /** local[i] += local[j] */
  addLocal(i: number, j: number): this {
    return this.get(i).get(j).add().set(i);
  }
  /** local[i] += n */
  addConst(i: number, n: number): this {
    return this.get(i).i32(n).add().set(i);
  }

  i32Load(offset = 0): this {
    return this.op(0x28, 2, ...uleb(offset));
  }
  i32Load8(offset = 0): this {
    return this.op(0x2d, 0, ...uleb(offset));
  }
  i32Store(offset = 0): this {
    return this.op(0x36, 2, ...uleb(offset));
  }
  i32Store8(offset = 0): this {
    return this.op(0x3a, 0, ...uleb(offset));
  }
  f32Load(offset = 0): this {
    return this.op(0x2a, 2, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.op(0x38, 2, ...uleb(offset));
  }
  f32Add(): this {
    return this.op(0x92);
  }
  f32Mul(): this {
    return this.op(0x94);
  }

  f32Const(v: number): this {
    const bytes = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(0x43, ...bytes);
  }
  f32Div(): this {
    return this.op(0x95);
  }
  /** f32.gt, pushing an i32 */
  f32Gt(): this {
    return this.op(0x5e);
  }
  /** f32.convert_i32_s */
  f32FromI32(): this {
    return this.op(0xb2);
  }

  /** A 0xfd-prefixed (SIMD) instruction with its immediates. */
  simd(opcode: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(opcode), ...imm);
  }
  /** v128.load with 16-byte alignment hint 2^4 (a hint only: unaligned access stays valid) */
  vLoad(offset = 0): this {
    return this.simd(0x00, 4, ...uleb(offset));
  }
  vStore(offset = 0): this {
    return this.simd(0x0b, 4, ...uleb(offset));
  }
  /** v128.load32_splat: one f32 from memory into all four lanes */
  vLoadSplat(offset = 0): this {
    return this.simd(0x09, 2, ...uleb(offset));
  }
  /** i32x4.splat */
  vSplatI32(): this {
    return this.simd(0x11);
  }
  /** f32x4.splat */
  vSplatF32(): this {
    return this.simd(0x13);
  }
  /** i32x4.eq: all-ones lanes where equal */
  vEqI32(): this {
    return this.simd(0x37);
  }
  /** f32x4.gt: all-ones lanes where a > b (false for NaN) */
  vGtF32(): this {
    return this.simd(0x44);
  }
  vAnd(): this {
    return this.simd(0x4e);
  }
  /** v128.bitselect(a, b, mask): bits of a where mask is set, of b elsewhere */
  vSelect(): this {
    return this.simd(0x52);
  }
  vAdd(): this {
    return this.simd(0xe4);
  }
  vMul(): this {
    return this.simd(0xe6);
  }

  /**
   * Opens `for (i = start; i + size <= end; i += step)`; `next()` closes it. `start` and `end`
   * push one i32 each; `step` is a constant or `{ local }`. Loops nest; bodies may read `i`.
   */
  for(i: number, start: () => void, end: () => void, step: Step = 1, size = 1): this {
    start();
    this.set(i);
    this.op(0x02, 0x40, 0x03, 0x40); // block, loop (no results)
    this.get(i);
    if (size > 1) this.i32(size - 1).add();
    end();
    this.ge().op(0x0d, 1); // br_if 1: leave the block once i + size - 1 >= end
    this.open.push({ i, step });
    return this;
  }

  /** `for (i = 0; i < end; i += step)` with `end` a local. */
  range(i: number, end: number, step = 1): this {
    const zero = () => this.i32(0);
    return this.for(i, zero, () => this.get(end), step);
  }

  /** `for (i = start; i + size <= end; i += step)` with `start` and `end` locals. */
  span(i: number, start: number, end: number, step = 1, size = 1): this {
    return this.for(
      i,
      () => this.get(start),
      () => this.get(end),
      step,
      size,
    );
  }

  /** Closes the innermost `for`. */
  next(): this {
    const loop = this.open.pop();
    if (loop == null) throw new Error('wasm-asm: next() without for()');
    if (typeof loop.step === 'number') this.addConst(loop.i, loop.step);
    else this.addLocal(loop.i, loop.step.local);
    return this.op(0x0c, 0, 0x0b, 0x0b); // br 0 (next iteration); end loop; end block
  }

  encode(): number[] {
    if (this.open.length > 0) throw new Error('wasm-asm: for() without next()');
    const groups: [number, ValueType][] = [];
    for (const t of this.localTypes) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const body = [
      ...uleb(groups.length),
      ...groups.flatMap(([n, t]) => [...uleb(n), t]),
      ...this.code,
      0x0b,
    ];
    return [...uleb(body.length), ...body];
  }
}

/**
 * A module exporting `funcs`, importing memory as env.memory. `shared` must match the memory
 * being imported (threaded wasm builds use a SharedArrayBuffer).
 */
export function buildModule(funcs: FuncBuilder[], shared: boolean): Uint8Array {
  const types = funcs.map((f) => [0x60, ...uleb(f.numParams), ...Array(f.numParams).fill(I32), 0]);
  const limits = shared ? [0x03, 1, ...uleb(65536)] : [0x00, 1];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [...uleb(types.length), ...types.flat()]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, ...limits]),
    ...section(3, [...uleb(funcs.length), ...funcs.flatMap((_, i) => uleb(i))]),
    ...section(7, [
      ...uleb(funcs.length),
      ...funcs.flatMap((f, i) => [...name(f.exportName), 0, ...uleb(i)]),
    ]),
    ...section(10, [...uleb(funcs.length), ...funcs.flatMap((f) => f.encode())]),
  ];
  return new Uint8Array(bytes);
}
