/**
 * The adaptive Knockoff policy's learning parts (Orekondy et al. 2019, §4.1.2): the three
 * rewards, their standardised mean, and the gradient bandit over the pool's classes (Sutton &
 * Barto 2018, §2.8). Plain float64 arithmetic on one answer at a time; no tensors.
 *
 * Numerical guards, where ART's KnockoffNets diverges (its issue #1746): answers are
 * probabilities and are never exponentiated again; the thief's probabilities are floored at
 * `PROB_FLOOR` inside the log; a reward whose running deviation is 0 (a one-hot victim's
 * certainty is always 1) standardises to 0 instead of dividing by zero.
 */

export const REWARD_KINDS = ['cert', 'div', 'loss', 'all'] as const;
export type RewardKind = (typeof REWARD_KINDS)[number];

/** Floor of the thief's probabilities inside the log of the loss reward. */
export const PROB_FLOOR = 1e-12;

/** Certainty: the gap between the two largest probabilities of `y`. */
export function certaintyReward(y: ArrayLike<number>): number {
  let first = -Infinity;
  let second = -Infinity;
  for (let k = 0; k < y.length; k++) {
    const v = y[k];
    if (v > first) {
      second = first;
      first = v;
    } else if (v > second) second = v;
  }
  return first - second;
}

/** Diversity: Σₖ max(0, yₖ − meanₖ), how far `y` stands out from the recent answers. */
export function diversityReward(y: ArrayLike<number>, mean: ArrayLike<number>): number {
  let r = 0;
  for (let k = 0; k < y.length; k++) r += Math.max(0, y[k] - mean[k]);
  return r;
}

/** Loss: the cross-entropy −Σₖ yₖ log max(qₖ, PROB_FLOOR) of the thief's `q` against `y`. */
export function lossReward(y: ArrayLike<number>, q: ArrayLike<number>): number {
  let r = 0;
  for (let k = 0; k < y.length; k++) {
    if (y[k] > 0) r -= y[k] * Math.log(Math.max(q[k], PROB_FLOOR));
  }
  return r;
}

/**
 * The adaptive policy's reward stream: `next(y, q)` takes the victim's answer (a distribution)
 * and the thief's probabilities for one query and returns its reward.
 */
export class KnockoffRewards {
  private readonly recent: Float64Array[] = [];
  private n = 0;
  private readonly mean = new Float64Array(3);
  private readonly m2 = new Float64Array(3);

  constructor(
    readonly kind: RewardKind,
    readonly window: number,
  ) {}

  next(y: ArrayLike<number>, q: ArrayLike<number>): number {
    this.recent.push(Float64Array.from(y));
    if (this.recent.length > this.window) this.recent.shift();
    const k = y.length;
    const avg = new Float64Array(k);
    for (const r of this.recent) for (let j = 0; j < k; j++) avg[j] += r[j] / this.recent.length;
    const raw = [certaintyReward(y), diversityReward(y, avg), lossReward(y, q)];
    if (this.kind === 'cert') return raw[0];
    if (this.kind === 'div') return raw[1];
    if (this.kind === 'loss') return raw[2];
    // Welford's running mean and (population) variance, this reward included.
    this.n++;
    let sum = 0;
    for (let i = 0; i < 3; i++) {
      const d = raw[i] - this.mean[i];
      this.mean[i] += d / this.n;
      this.m2[i] += d * (raw[i] - this.mean[i]);
      const sd = Math.sqrt(this.m2[i] / this.n);
      sum += sd > 1e-8 ? (raw[i] - this.mean[i]) / sd : 0;
    }
    return sum / 3;
  }
}

/** A gradient bandit over `arms` actions (Sutton & Barto 2018, §2.8) with step size `alpha`. */
export class GradientBandit {
  readonly h: Float64Array;
  /** Mean of every reward so far (the baseline r̄). */
  baseline = 0;
  private t = 0;

  constructor(
    arms: number,
    readonly alpha: number,
  ) {
    this.h = new Float64Array(arms);
  }

  /** π = softmax(H) over the arms still `open` (closed arms get 0). */
  probabilities(open: ArrayLike<boolean>): Float64Array {
    let max = -Infinity;
    for (let a = 0; a < this.h.length; a++) if (open[a] && this.h[a] > max) max = this.h[a];
    const p = new Float64Array(this.h.length);
    let sum = 0;
    for (let a = 0; a < this.h.length; a++) {
      if (open[a]) {
        p[a] = Math.exp(this.h[a] - max);
        sum += p[a];
      }
    }
    for (let a = 0; a < p.length; a++) p[a] /= sum;
    return p;
  }

  /** One step: arm `action` earned `reward`; π is taken over the `open` arms. */
  update(action: number, reward: number, open: ArrayLike<boolean>): void {
    const p = this.probabilities(open);
    this.t++;
    this.baseline += (reward - this.baseline) / this.t;
    const step = this.alpha * (reward - this.baseline);
    for (let a = 0; a < this.h.length; a++) {
      if (!open[a]) continue;
      this.h[a] += a === action ? step * (1 - p[a]) : -step * p[a];
    }
  }
}
