/**
 * The L2 pieces of the Square Attack (Andriushchenko et al., ECCV 2020, Sec. 3.2, Algorithm 3),
 * following the reference implementation (max-andr/square-attack, `square_attack_l2`):
 * perturbations are built from "pseudo-Gaussian" blocks, centred squares whose value decays as
 * 1/(r + 1)² with the ring r; an update moves the L2 mass of a second square window into the
 * first and rescales the whole perturbation to the radius eps. Layout is NHWC: per-channel norms
 * run over the rows and columns of one channel. Pure CPU code on flat Float32Arrays.
 */
import type { Rng } from '../../engine/rng.js';

/** One example's layout, `[h, w, ch]` with d = h·w·ch values, and the model's bounds. */
export interface Geometry {
  h: number;
  w: number;
  ch: number;
  d: number;
  bounds: readonly [number, number];
}

/** Guards the per-channel window norm, as the reference does. */
const TINY = 1e-10;
/**
 * The final rescale aims at eps·(1 − SAFETY) so that float32 rounding of x + δ can never leave
 * the ball; the shared re-clip is then the identity on every accepted point.
 */
const SAFETY = 1e-6;

const clip = (v: number, b: readonly [number, number]) => Math.min(b[1], Math.max(b[0], v));

/**
 * Pseudo-Gaussian block of `rows` × `cols` (row-major), unit L2 norm: concentric rectangles
 * around the centre, ring r adding 1/(r + 1)² (the reference's `pseudo_gaussian_pert_rectangles`).
 */
export function pseudoGaussianBlock(rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  let r0 = Math.floor(rows / 2);
  let c0 = Math.floor(cols / 2);
  const rings = Math.max(r0, c0) + 1;
  for (let ring = 0; ring < rings; ring++) {
    const v = 1 / (ring + 1) ** 2;
    // The far edge uses the unclamped start, so rings grow symmetrically from the centre.
    for (let r = Math.max(r0, 0); r < Math.min(r0 + 2 * ring + 1, rows); r++) {
      for (let c = Math.max(c0, 0); c < Math.min(c0 + 2 * ring + 1, cols); c++) {
        out[r * cols + c] += v;
      }
    }
    r0--;
    c0--;
  }
  return normalize(out);
}

/**
 * The update block of side s (the reference's `meta_pseudo_gaussian_pert` with two sub-squares):
 * a pseudo-Gaussian block on the top half and its negation on the bottom half, unit L2 norm,
 * transposed with probability 1/2.
 */
export function metaPseudoGaussian(s: number, rng: Rng): Float64Array {
  const half = Math.floor(s / 2);
  const out = new Float64Array(s * s);
  out.set(pseudoGaussianBlock(half, s), 0);
  const bottom = pseudoGaussianBlock(s - half, s);
  for (let i = 0; i < bottom.length; i++) out[half * s + i] = -bottom[i];
  normalize(out);
  if (rng.next() < 0.5) return out;
  const t = new Float64Array(s * s);
  for (let r = 0; r < s; r++) for (let c = 0; c < s; c++) t[c * s + r] = out[r * s + c];
  return t;
}

function normalize(v: Float64Array): Float64Array {
  let sq = 0;
  for (const e of v) sq += e * e;
  const n = Math.sqrt(sq);
  if (n > 0) for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

/**
 * Initial points: a grid of s × s update blocks, s = ⌊min(h, w)/5⌋, centred in the image, each
 * with one random sign per channel; the perturbation is scaled to eps and clipped into bounds.
 * As in the reference, a grid of ⌊h/s⌋ × ⌊w/s⌋ blocks is cut at the image border.
 */
export function squareL2Init(
  xs: Float32Array,
  n: number,
  g: Geometry,
  eps: number,
  rng: Rng,
): Float32Array {
  const s = Math.max(1, Math.floor(Math.min(g.h, g.w) / 5));
  const top = Math.floor((g.h - 5 * s) / 2);
  const left = Math.floor((g.w - 5 * s) / 2);
  const out = new Float32Array(n * g.d);
  const delta = new Float64Array(g.d);
  for (let k = 0; k < n; k++) {
    delta.fill(0);
    for (let i = 0; i < Math.floor(g.h / s); i++) {
      for (let j = 0; j < Math.floor(g.w / s); j++) {
        const block = metaPseudoGaussian(s, rng);
        for (let c = 0; c < g.ch; c++) {
          const sign = rng.next() < 0.5 ? -1 : 1;
          for (let r = 0; r < s && top + i * s + r < g.h; r++) {
            for (let col = 0; col < s && left + j * s + col < g.w; col++) {
              const at = ((top + i * s + r) * g.w + left + j * s + col) * g.ch + c;
              delta[at] += sign * block[r * s + col];
            }
          }
        }
      }
    }
    writeScaled(xs, k, delta, out, k, g, eps);
  }
  return out;
}

/** out[j] = clip(x_k + δ·eps(1 − SAFETY)/‖δ‖₂) into bounds; δ = 0 gives x_k. */
function writeScaled(
  xs: Float32Array,
  k: number,
  delta: Float64Array,
  out: Float32Array,
  j: number,
  g: Geometry,
  eps: number,
): void {
  let sq = 0;
  for (const v of delta) sq += v * v;
  const scale = sq > 0 ? (eps * (1 - SAFETY)) / Math.sqrt(sq) : 0;
  for (let i = 0; i < g.d; i++) {
    out[j * g.d + i] = clip(xs[k * g.d + i] + delta[i] * scale, g.bounds);
  }
}

/** Window side for the fraction p: odd, at least 3 (reference), at most the image. */
export function squareL2Side(p: number, g: Geometry): number {
  let s = Math.max(Math.round(Math.sqrt(p * g.h * g.w)), 3);
  if (s % 2 === 0) s++;
  return Math.max(1, Math.min(s, g.h - 1, g.w - 1));
}

/**
 * One proposal per active example (Algorithm 3): δ = xBest − x; draw windows W1 and W2 of side
 * s; per channel, the new W1 content is (update block · random sign + δ|W1 / ‖δ|W1‖) rescaled to
 * √(max(eps² − ‖δ‖², 0)/c + ‖δ|W1∪W2‖²), so the mass of both windows (plus any unused budget)
 * lands in W1; W2 is zeroed, then δ is rescaled to eps and x + δ clipped into bounds.
 * Windows are drawn per example (the reference shares them across a batch), at any position.
 */
export function squareL2Propose(
  xs: Float32Array,
  xBest: Float32Array,
  active: number[],
  g: Geometry,
  s: number,
  eps: number,
  rng: Rng,
): Float32Array {
  const xNew = new Float32Array(active.length * g.d);
  const delta = new Float64Array(g.d);
  active.forEach((k, j) => {
    let total = 0;
    for (let i = 0; i < g.d; i++) {
      delta[i] = xBest[k * g.d + i] - xs[k * g.d + i];
      total += delta[i] * delta[i];
    }
    const windows: Windows = {
      s,
      w1: [rng.int(g.h - s + 1), rng.int(g.w - s + 1)],
      w2: [rng.int(g.h - s + 1), rng.int(g.w - s + 1)],
    };
    const block = metaPseudoGaussian(s, rng);
    // Budget per channel: its share of the unused eps², plus the mass already in both windows.
    const spare = Math.max(eps * eps - total, 0) / g.ch;
    for (let ch = 0; ch < g.ch; ch++) {
      moveMass(delta, g, ch, windows, block, rng.next() < 0.5 ? -1 : 1, spare);
    }
    writeScaled(xs, k, delta, xNew, j, g, eps);
  });
  return xNew;
}

/** Two s × s windows, by their top-left corners [row, column]. */
interface Windows {
  s: number;
  w1: [number, number];
  w2: [number, number];
}

/** Algorithm 3's update of one channel of δ, in place (see {@link squareL2Propose}). */
function moveMass(
  delta: Float64Array,
  g: Geometry,
  ch: number,
  { s, w1, w2 }: Windows,
  block: Float64Array,
  sign: number,
  spare: number,
): void {
  const at = (r: number, c: number) => (r * g.w + c) * g.ch + ch;
  const inside = (r: number, c: number, w: [number, number]) =>
    r >= w[0] && r < w[0] + s && c >= w[1] && c < w[1] + s;
  let win1 = 0;
  let union = 0;
  for (let r = Math.min(w1[0], w2[0]); r < Math.max(w1[0], w2[0]) + s; r++) {
    for (let c = Math.min(w1[1], w2[1]); c < Math.max(w1[1], w2[1]) + s; c++) {
      const a = inside(r, c, w1);
      if (!a && !inside(r, c, w2)) continue;
      const v = delta[at(r, c)];
      union += v * v;
      if (a) win1 += v * v;
    }
  }
  const oldNorm = Math.sqrt(win1) + TINY;
  const fresh = new Float64Array(s * s);
  let freshSq = 0;
  for (let r = 0; r < s; r++) {
    for (let c = 0; c < s; c++) {
      const v = block[r * s + c] * sign + delta[at(w1[0] + r, w1[1] + c)] / oldNorm;
      fresh[r * s + c] = v;
      freshSq += v * v;
    }
  }
  const scale = freshSq > 0 ? Math.sqrt(spare + union) / Math.sqrt(freshSq) : 0;
  for (let r = w2[0]; r < w2[0] + s; r++) {
    for (let c = w2[1]; c < w2[1] + s; c++) delta[at(r, c)] = 0;
  }
  for (let r = 0; r < s; r++) {
    for (let c = 0; c < s; c++) delta[at(w1[0] + r, w1[1] + c)] = fresh[r * s + c] * scale;
  }
}
