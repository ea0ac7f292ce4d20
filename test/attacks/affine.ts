/** Affine classifiers with wide, configurable bounds, for minimum-norm attacks' closed forms. */
import { LinearClassifier } from './helpers.js';

/** The linear test model with wide bounds [-10, 10] by default, plus float64 logits. */
export class AffineClassifier extends LinearClassifier {
  constructor(
    inputShape: number[],
    weights: number[][],
    bias: number[],
    bounds: [number, number] = [-10, 10],
  ) {
    super(inputShape, weights, bias, bounds);
  }

  /** Logits of one flat example, in float64 JS. */
  logitsOf(x: number[]): number[] {
    return this.bias.map((b, k) => b + x.reduce((s, v, i) => s + v * this.weights[i][k], 0));
  }
}

/** Distances from x (flat) to each boundary {z_k = z_y}, k ≠ y, in L2 and L∞ (dual norm L1). */
export function boundaryDistances(
  model: AffineClassifier,
  x: number[],
  y: number,
): { l2: number; linf: number }[] {
  const z = model.logitsOf(x);
  const out: { l2: number; linf: number }[] = [];
  for (let k = 0; k < model.numClasses; k++) {
    if (k === y) continue;
    const w = model.weights.map((row) => row[k] - row[y]);
    const f = Math.abs(z[k] - z[y]);
    out.push({
      l2: f / Math.hypot(...w),
      linf: f / w.reduce((s, v) => s + Math.abs(v), 0),
    });
  }
  return out;
}
