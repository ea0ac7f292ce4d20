/**
 * The path of an ONNX classifier's graph from its input to its output, for the bound importer
 * (from-onnx.ts). Values that depend on the input (through anything but Shape and Size: shapes
 * are constants) are followed backwards from the output: a node reading one such value extends
 * the path; an Add or Sub of two is a join whose branches start at the latest value both depend
 * on (a residual block; nested blocks come out as nested joins). Anything else is refused by node.
 */
import type { OnnxGraph, OnnxNode } from '../onnx/graph.js';
import { describe, unsupported } from './ops.js';

/** One node on the path, with the input-dependent value it reads (the branch point for a join). */
export interface Step {
  node: OnnxNode;
  input: string;
  /** For a join (Add or Sub of two branches): the two values it adds. */
  joins?: [string, string];
}

/** The node as error messages name it, and its source for ops. */
export const nodeSource = (node: OnnxNode) => ({
  className: node.opType,
  name: node.name || node.outputs[0],
  what: 'node' as const,
});

/** `fn: <Op> node '<name>': why`, as UNSUPPORTED. */
export const refuseNode = (fn: string, node: OnnxNode, why: string) =>
  unsupported(fn, `${describe(nodeSource(node))}: ${why}`);

export class OnnxPaths {
  readonly producer = new Map<string, OnnxNode>();
  /** Values that depend on the input (through anything but Shape / Size). */
  readonly dynamic = new Set<string>();
  /** Position of the node computing each value (-1 for the graph's input). */
  private readonly order = new Map<string, number>();

  constructor(
    graph: OnnxGraph,
    private readonly fn: string,
  ) {
    const input = graph.inputs[0].name;
    this.dynamic.add(input);
    this.order.set(input, -1);
    graph.nodes.forEach((node, k) => {
      const dependent =
        node.opType !== 'Shape' &&
        node.opType !== 'Size' &&
        node.inputs.some((i) => this.dynamic.has(i));
      for (const out of node.outputs) {
        this.producer.set(out, node);
        this.order.set(out, k);
        if (dependent) this.dynamic.add(out);
      }
    });
  }

  /** The steps from value `start` to value `end`, which must reach it on every path. */
  segment(start: string, end: string): Step[] {
    const steps: Step[] = [];
    let cur = end;
    while (cur !== start) {
      const node = this.producer.get(cur);
      if (node === undefined) {
        throw unsupported(
          this.fn,
          `ONNX value '${end}' depends on the input through a path that bypasses '${start}' (branches that do not join in an Add)`,
        );
      }
      const reads = node.inputs.filter((i) => this.dynamic.has(i));
      const inputs = [...new Set(reads)];
      if (reads.length > inputs.length) {
        throw refuseNode(this.fn, node, 'combines a value with itself');
      }
      if (inputs.length === 1) {
        steps.push({ node, input: inputs[0] });
        cur = inputs[0];
      } else if (inputs.length === 2 && (node.opType === 'Add' || node.opType === 'Sub')) {
        const from = this.branchPoint(inputs[0], inputs[1], node);
        steps.push({ node, input: from, joins: [inputs[0], inputs[1]] });
        cur = from;
      } else {
        throw refuseNode(
          this.fn,
          node,
          `combines ${inputs.length} values that depend on the input`,
        );
      }
    }
    return steps.reverse();
  }

  /** Every input-dependent value `v` is computed from (itself included). */
  private ancestors(v: string): Set<string> {
    const seen = new Set<string>();
    const stack = [v];
    while (stack.length > 0) {
      const u = stack.pop()!;
      if (seen.has(u)) continue;
      seen.add(u);
      const node = this.producer.get(u);
      if (node !== undefined) for (const i of node.inputs) if (this.dynamic.has(i)) stack.push(i);
    }
    return seen;
  }

  /** The latest value both `a` and `b` are computed from: where the two branches split. */
  private branchPoint(a: string, b: string, join: OnnxNode): string {
    const fromA = this.ancestors(a);
    let best: string | undefined;
    for (const v of this.ancestors(b)) {
      if (fromA.has(v) && (best === undefined || this.order.get(v)! > this.order.get(best)!)) {
        best = v;
      }
    }
    if (best === undefined)
      throw refuseNode(this.fn, join, 'adds two values with no common source');
    return best;
  }
}
