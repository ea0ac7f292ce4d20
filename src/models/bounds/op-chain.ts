/**
 * A chain of bound ops being built (from-onnx.ts): each op with the shape of one example leaving
 * it, adjacent transposes composed into one (dropped when they cancel), a transpose that only
 * moves axes of size 1 written as a reshape, and runs of reshapes as one.
 */
import type { Network, Op, Source } from './ops.js';

export const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

export class OpChain {
  readonly ops: Op[] = [];
  readonly shapes: number[][];

  constructor(inShape: number[]) {
    this.shapes = [inShape];
  }

  get shape(): number[] {
    return this.shapes[this.shapes.length - 1];
  }

  push(op: Op, out: number[]): void {
    this.ops.push(op);
    this.shapes.push(out);
  }

  private pop(): Op {
    this.shapes.pop();
    return this.ops.pop()!;
  }

  /** Reshapes to `out` (one reshape for a run of them; none when the shape does not change). */
  reshape(out: number[], source: Source): void {
    if (this.ops[this.ops.length - 1]?.kind === 'reshape') this.pop();
    if (!same(this.shape, out)) this.push({ kind: 'reshape', source }, out);
  }

  /** Transposes one example by `perm` (composed with a transpose just before it). */
  transpose(perm: number[], source: Source): void {
    let p = perm;
    const last = this.ops[this.ops.length - 1];
    if (last?.kind === 'transpose') {
      this.pop();
      p = perm.map((j) => last.perm[j]);
    }
    const input = this.shape;
    const out = p.map((j) => input[j]);
    if (p.every((j, i) => j === i)) return;
    // Moving only axes of size 1 keeps the element order: a reshape.
    const moved = p.filter((j) => input[j] !== 1);
    if (moved.every((j, i) => i === 0 || j > moved[i - 1])) this.reshape(out, source);
    else this.push({ kind: 'transpose', perm: p, source }, out);
  }

  network(): Network {
    return { ops: this.ops, shapes: this.shapes };
  }
}
