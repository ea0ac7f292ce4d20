/**
 * The steps of HopSkipJump (see `hop-skip-jump.ts`) for one example, as generators that yield
 * the points they need classified (`decision-search.ts` batches them across examples). Every
 * step returns null once the example must stop: its query budget cannot pay for the next query,
 * or (with `eps`) it already holds an adversarial point within eps. Points are flat Float32Arrays
 * of d values, always inside the bounds: a point is stored exactly as it was queried, so any
 * point classified adversarial stays adversarial when returned.
 */
import type { Rng } from '../../engine/rng.js';
import type { DecisionRequest, RoundSize } from './decision-search.js';

/** One example's search state. */
export interface HsjSearch {
  /** The clean example. */
  x0: Float32Array;
  d: number;
  c: {
    norm: 'l2' | 'linf';
    maxQueries: number;
    initTrials: number;
    eps?: number;
  };
  bounds: readonly [number, number];
  /** Bisection threshold θ. */
  theta: number;
  rng: Rng;
  spent: number;
  /** The closest point classified adversarial so far, and its distance to x0. */
  best: Float32Array | null;
  bestDist: number;
  roundSize: RoundSize;
}

type Step<T> = Generator<DecisionRequest, T | null, Uint8Array>;

const clip = (v: number, b: readonly [number, number]) => Math.min(b[1], Math.max(b[0], v));

/** ‖p − x0‖ in the search's norm, in float64. */
export function distance(s: HsjSearch, p: Float32Array): number {
  let acc = 0;
  for (let i = 0; i < s.d; i++) {
    const v = p[i] - s.x0[i];
    acc = s.c.norm === 'l2' ? acc + v * v : Math.max(acc, Math.abs(v));
  }
  return s.c.norm === 'l2' ? Math.sqrt(acc) : acc;
}

/** Queries `count` points (null: budget or eps says stop); records the closest adversarial one. */
export function* ask(s: HsjSearch, points: Float32Array, count: number): Step<Uint8Array> {
  if (s.c.eps !== undefined && s.bestDist <= s.c.eps) return null;
  if (s.spent + count > s.c.maxQueries) return null;
  s.spent += count;
  const decisions = yield { points, count };
  for (let j = 0; j < count; j++) {
    if (decisions[j] !== 1) continue;
    const p = points.subarray(j * s.d, (j + 1) * s.d);
    const dist = distance(s, p);
    if (dist < s.bestDist) {
      s.best = p.slice();
      s.bestDist = dist;
    }
  }
  return decisions;
}

/** The first adversarial point among `candidates`, then (`noise`) among uniform noise images. */
export function* scout(
  s: HsjSearch,
  candidates: Float32Array[],
  noise = false,
): Step<Float32Array> {
  for (const p of candidates) {
    const point = Float32Array.from(p, (v) => clip(v, s.bounds));
    const decision = yield* ask(s, point, 1);
    if (decision === null) return null;
    if (decision[0] === 1) return point;
  }
  for (let trial = 0; noise && trial < s.c.initTrials; trial++) {
    const [lo, hi] = s.bounds;
    const point = Float32Array.from({ length: s.d }, () =>
      clip(lo + (hi - lo) * s.rng.next(), s.bounds),
    );
    const decision = yield* ask(s, point, 1);
    if (decision === null) return null;
    if (decision[0] === 1) return point;
  }
  return null;
}

/** Bisections a boundary search of `p` needs at most (the budget reserve of one iteration). */
export function bisections(s: HsjSearch): number {
  const high = s.c.norm === 'l2' ? 1 : Math.max(1, s.bounds[1] - s.bounds[0]);
  return Math.ceil(Math.log2(high / s.theta));
}

/**
 * Bisection between x0 and the adversarial point `p` (the reference's `binary_search_batch`):
 * L2 (`blend`) over α in [0, 1], points (1 − α)x0 + αp; L∞ over α in [0, ‖p − x0‖∞], points
 * clip(p, x0 − α, x0 + α). Stops when the bracket is below `threshold` (default θ for L2,
 * min(α_max·θ, θ) for L∞) and returns the adversarial end.
 */
export function* toBoundary(
  s: HsjSearch,
  p: Float32Array,
  blend: 'l2' | 'linf',
  threshold?: number,
): Step<Float32Array> {
  let lo = 0;
  let hi = 1;
  if (blend === 'linf') {
    hi = 0;
    for (let i = 0; i < s.d; i++) hi = Math.max(hi, Math.abs(p[i] - s.x0[i]));
  }
  const stop = threshold ?? (blend === 'l2' ? s.theta : Math.min(hi * s.theta, s.theta));
  let out = p;
  while (hi - lo > stop) {
    const mid = (lo + hi) / 2;
    const q = new Float32Array(s.d);
    for (let i = 0; i < s.d; i++) {
      const v =
        blend === 'l2'
          ? (1 - mid) * s.x0[i] + mid * p[i]
          : Math.min(Math.max(p[i], s.x0[i] - mid), s.x0[i] + mid);
      q[i] = clip(v, s.bounds);
    }
    const decision = yield* ask(s, q, 1);
    if (decision === null) return null;
    if (decision[0] === 1) {
      hi = mid;
      out = q;
    } else lo = mid;
  }
  return out;
}

/**
 * Monte-Carlo estimate of the boundary's normal at `xb` (the reference's `approximate_gradient`):
 * n unit directions u_b (Gaussian for L2, uniform in [−1, 1]^d for L∞, normalised), points
 * clip(xb + δu_b) with u_b replaced by the clipped step / δ, φ_b = ±1 by decision; the mean of
 * φ_b·u_b with the baseline mean(φ) subtracted (plain ±mean(u_b) when all φ agree), normalised.
 * Sums are streamed over the requests in sample order, so the result does not depend on how
 * the samples are split into requests.
 */
export function* estimateGradient(
  s: HsjSearch,
  xb: Float32Array,
  n: number,
  delta: number,
): Step<Float64Array> {
  const { d } = s;
  const sumU = new Float64Array(d);
  const sumFU = new Float64Array(d);
  const u = new Float64Array(d);
  let sumF = 0;
  for (let done = 0; done < n; ) {
    const m = Math.min(s.roundSize.rowsPerExample, n - done);
    const points = new Float32Array(m * d);
    for (let j = 0; j < m; j++) {
      let sq = 0;
      for (let i = 0; i < d; i++) {
        u[i] = s.c.norm === 'l2' ? s.rng.normal() : 2 * s.rng.next() - 1;
        sq += u[i] * u[i];
      }
      const scale = delta / Math.sqrt(sq);
      for (let i = 0; i < d; i++) points[j * d + i] = clip(xb[i] + u[i] * scale, s.bounds);
    }
    const decisions = yield* ask(s, points, m);
    if (decisions === null) return null;
    for (let j = 0; j < m; j++) {
      const f = decisions[j] === 1 ? 1 : -1;
      sumF += f;
      for (let i = 0; i < d; i++) {
        const step = (points[j * d + i] - xb[i]) / delta;
        sumU[i] += step;
        sumFU[i] += f * step;
      }
    }
    done += m;
  }
  const meanF = sumF / n;
  const grad = new Float64Array(d);
  let sq = 0;
  for (let i = 0; i < d; i++) {
    grad[i] = Math.abs(meanF) === 1 ? meanF * sumU[i] : sumFU[i] - meanF * sumU[i];
    sq += grad[i] * grad[i];
  }
  const norm = Math.sqrt(sq);
  if (norm > 0) for (let i = 0; i < d; i++) grad[i] /= norm;
  return grad;
}

/**
 * Geometric progression for the step size: from ξ, halve until clip(xb + ξ·update) is
 * adversarial. A step too small to move xb in float32 returns xb itself (known adversarial).
 */
export function* geometricStep(
  s: HsjSearch,
  xb: Float32Array,
  update: Float64Array,
  xi: number,
): Step<Float32Array> {
  for (let size = xi; ; size /= 2) {
    const q = new Float32Array(s.d);
    let moved = false;
    for (let i = 0; i < s.d; i++) {
      q[i] = clip(xb[i] + size * update[i], s.bounds);
      if (q[i] !== xb[i]) moved = true;
    }
    if (!moved) return xb;
    const decision = yield* ask(s, q, 1);
    if (decision === null) return null;
    if (decision[0] === 1) return q;
  }
}
