/**
 * The threat-model helpers every gradient attack shares (Foolbox 3's three hooks: random start,
 * normalise gradient, project). Norms are per example: each reduction runs over all non-batch
 * axes, so any rank `[batch, ...]` works. No function disposes its inputs; the caller owns every
 * returned tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Rng } from '../../engine/rng.js';
import { check } from '../../errors.js';
import type { Norm } from '../../objectives/threat-model.js';

export { NORMS, type Norm } from '../../objectives/threat-model.js';

/** Guards divisions by a norm that may be zero. */
const TINY = 1e-12;

/** `[batch, ...]` → `[batch, d]`. */
function flat(t: tf.Tensor): tf.Tensor2D {
  return tf.reshape(t, [t.shape[0], -1]);
}

/** A per-example `[batch]` tensor reshaped to broadcast against a tensor of rank `rank`. */
function perExample(v: tf.Tensor, rank: number): tf.Tensor {
  return tf.reshape(v, [v.shape[0], ...new Array<number>(rank - 1).fill(1)]);
}

function checkEps(fn: string, eps: number): void {
  check(
    Number.isFinite(eps) && eps >= 0,
    () => `${fn}: eps must be >= 0, got ${eps}`,
    'BAD_OPTION',
  );
}

/** Per-example norms `[batch]` of a batch of vectors `[batch, ...]`. */
function norms(delta: tf.Tensor, norm: Norm): tf.Tensor1D {
  return tf.tidy(() => {
    const d = flat(delta);
    if (norm === 'linf') return tf.max(tf.abs(d), 1);
    if (norm === 'l1') return tf.sum(tf.abs(d), 1);
    return tf.sqrt(tf.sum(tf.square(d), 1));
  }) as tf.Tensor1D;
}

/** ‖xAdv − x‖ per example, `[batch]`. */
export function perturbationNorms(xAdv: tf.Tensor, x: tf.Tensor, norm: Norm): tf.Tensor1D {
  return tf.tidy(() => norms(tf.sub(xAdv, x), norm));
}

/**
 * Euclidean projection of `v` (`[batch, d]`) onto the L1 ball of radius `eps` > 0, per example,
 * by the sorting algorithm of Duchi, Shalev-Shwartz, Singer & Chandra (ICML 2008), Fig. 1:
 * u = |v| sorted descending, ρ = max{j : u_j − (Σ_{r≤j} u_r − eps)/j > 0},
 * θ = (Σ_{r≤ρ} u_r − eps)/ρ, w = sign(v)·max(|v| − θ, 0). Rows already inside are returned as is.
 */
function projectL1(v: tf.Tensor2D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const d = v.shape[1];
    const a = tf.abs(v);
    const u = tf.topk(a, d, true).values;
    const cssv = tf.cumsum(u, 1);
    const j = tf.range(1, d + 1, 1, 'float32');
    // The condition holds on a prefix j = 1..ρ (and always at j = 1 when eps > 0).
    const cond = tf.greater(tf.sub(u, tf.div(tf.sub(cssv, eps), j)), 0);
    const rho = tf.maximum(tf.sum(tf.cast(cond, 'float32'), 1), 1);
    const atRho = tf.sum(tf.mul(cssv, tf.oneHot(tf.cast(tf.sub(rho, 1), 'int32'), d)), 1);
    const theta = tf.reshape(tf.div(tf.sub(atRho, eps), rho), [-1, 1]);
    const w = tf.mul(tf.sign(v), tf.relu(tf.sub(a, theta)));
    const inside = tf.reshape(tf.lessEqual(tf.sum(a, 1), eps), [-1, 1]);
    return tf.where(tf.broadcastTo(inside, v.shape), v, w) as tf.Tensor2D;
  });
}

/**
 * Projects `xAdv` onto the `norm` ball of radius `eps` around `x` (same shape `[batch, ...]`).
 * Points already inside are returned unchanged (bit for bit). eps = 0 returns x.
 */
export function projectToBall(xAdv: tf.Tensor, x: tf.Tensor, eps: number, norm: Norm): tf.Tensor {
  checkEps('projectToBall', eps);
  check(
    tf.util.arraysEqual(xAdv.shape, x.shape),
    () => `projectToBall: xAdv shape [${xAdv.shape}] differs from x shape [${x.shape}]`,
  );
  return tf.tidy(() => {
    if (norm === 'linf') {
      // Clamping xAdv itself (not x + clamp(delta)) keeps inside points exact.
      return tf.minimum(tf.maximum(xAdv, tf.sub(x, eps)), tf.add(x, eps));
    }
    if (eps === 0) return tf.clone(x);
    const delta = tf.sub(xAdv, x);
    const size = norms(delta, norm);
    let projected: tf.Tensor;
    if (norm === 'l2') {
      const factor = tf.minimum(tf.div(eps, tf.maximum(size, TINY)), 1);
      projected = tf.add(x, tf.mul(delta, perExample(factor, x.rank)));
    } else {
      projected = tf.add(x, tf.reshape(projectL1(flat(delta), eps), x.shape));
    }
    const inside = perExample(tf.lessEqual(size, eps), x.rank);
    return tf.where(tf.broadcastTo(inside, x.shape), xAdv, projected);
  });
}

/** Clips every value into `bounds` = [low, high]. */
export function clipToBounds(x: tf.Tensor, bounds: readonly [number, number]): tf.Tensor {
  return tf.clipByValue(x, bounds[0], bounds[1]);
}

/**
 * The steepest-ascent direction of unit `norm` for a gradient `[batch, ...]`:
 * linf → sign(g); l2 → g/‖g‖₂ per example; l1 → the sparse direction of Tramèr & Boneh (2019) /
 * Foolbox's SparseL1Descent: sign(g) on the top `l1Fraction` of coordinates by |g| (at least one;
 * ties included), divided by their count so its L1 norm is 1. A zero gradient gives zero.
 */
export function normalizeGradient(grad: tf.Tensor, norm: Norm, l1Fraction = 0.01): tf.Tensor {
  check(
    l1Fraction > 0 && l1Fraction <= 1,
    () => `normalizeGradient: l1Fraction must be in (0, 1], got ${l1Fraction}`,
    'BAD_OPTION',
  );
  return tf.tidy(() => {
    if (norm === 'linf') return tf.sign(grad);
    if (norm === 'l2') {
      const size = tf.maximum(norms(grad, 'l2'), TINY);
      return tf.div(grad, perExample(size, grad.rank));
    }
    const g = flat(grad);
    const d = g.shape[1];
    const k = Math.max(1, Math.min(d, Math.ceil(l1Fraction * d)));
    const a = tf.abs(g);
    const kth = tf.slice(tf.topk(a, k, true).values, [0, k - 1], [-1, 1]);
    const mask = tf.cast(tf.greaterEqual(a, kth), 'float32');
    const count = tf.sum(mask, 1, true);
    return tf.reshape(tf.div(tf.mul(tf.sign(g), mask), count), grad.shape);
  });
}

/**
 * A point drawn uniformly from the `norm` ball of radius `eps` around each example of `x`
 * (not clipped to bounds: callers clip). linf: uniform per coordinate. l2: a normal direction,
 * radius eps·u^(1/d). l1: |δ|/eps = the first d coordinates of a Dirichlet(1, …, 1) vector in d+1
 * dimensions (exponential variates over their sum), times random signs — uniform in the ball.
 * Randomness comes only from `rng`, so the start is reproducible from its seed.
 */
export function randomStart(x: tf.Tensor, eps: number, norm: Norm, rng: Rng): tf.Tensor {
  checkEps('randomStart', eps);
  const [b] = x.shape;
  const d = x.size / b;
  return tf.tidy(() => {
    let delta: tf.Tensor2D;
    if (norm === 'linf') {
      delta = tf.randomUniform([b, d], -eps, eps, 'float32', rng.nextSeed());
    } else if (norm === 'l2') {
      const z = tf.randomNormal([b, d], 0, 1, 'float32', rng.nextSeed());
      const dir = tf.div(z, tf.maximum(tf.reshape(norms(z, 'l2'), [b, 1]), TINY));
      const u = tf.randomUniform([b, 1], 0, 1, 'float32', rng.nextSeed());
      delta = tf.mul(dir, tf.mul(tf.pow(u, 1 / d), eps));
    } else {
      const u = tf.randomUniform([b, d + 1], 0, 1, 'float32', rng.nextSeed());
      const e = tf.neg(tf.log(tf.sub(1, u))); // Exp(1); 1 − u ∈ (0, 1]
      const total = tf.maximum(tf.sum(e, 1, true), TINY);
      const simplex = tf.div(tf.slice(e, [0, 0], [b, d]), total);
      const s = tf.randomUniform([b, d], 0, 1, 'float32', rng.nextSeed());
      const signs = tf.where(tf.less(s, 0.5), tf.fill([b, d], -1), tf.fill([b, d], 1));
      delta = tf.mul(tf.mul(simplex, signs), eps);
    }
    return tf.add(x, tf.reshape(delta, x.shape));
  });
}

/**
 * Project onto the eps-ball, then clip into bounds: the final re-clip every attack's entry point
 * applies (as Foolbox does, "because we don't really know what the attack returns"). Clipping
 * after projecting keeps the point inside the ball when x is inside the bounds, since it only
 * moves each coordinate towards x.
 */
export function enforceThreatModel(
  xAdv: tf.Tensor,
  x: tf.Tensor,
  eps: number,
  norm: Norm,
  bounds: readonly [number, number],
): tf.Tensor {
  return tf.tidy(() => clipToBounds(projectToBall(xAdv, x, eps, norm), bounds));
}
