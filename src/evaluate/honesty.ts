/**
 * Honesty checks: signs that a robustness number comes from a weak or fooled attack rather than a
 * robust model (Carlini et al. 2019, "On Evaluating Adversarial Robustness", §5; Athalye et al.
 * 2018; AutoAttack's automatic warnings). Each check is a pure decision over measured numbers and
 * returns pass, warn or skip with the numbers in `detail`; the two measurements that need the
 * model (loss gradients, random noise) are here too. The runner measures the rest with attacks.
 */
import * as tf from '@tensorflow/tfjs-core';
import { attackObjective } from '../attacks/evasion/objective.js';
import { type Dataset, exampleSize } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import type { Classifier } from '../models/classifier.js';
import type { AttackCell, HonestyCheck, Norm } from './results.js';

/** unbounded-eps: accuracy an attack over the whole input range may leave. */
export const UNBOUNDED_MAX_ACCURACY = 0.01;
/** more-steps, black-vs-white: accuracy drop (fraction) that counts as noticeable. */
export const NOTICEABLE_DROP = 0.02;
/** gradients: fraction of examples with a zero or non-finite gradient that warns. */
export const MAX_BAD_GRADIENTS = 0.1;

const TITLES: Record<HonestyCheck['id'], string> = {
  'unbounded-eps': 'An unbounded attack reaches 0% accuracy',
  'monotone-eps': 'Robust accuracy does not grow with eps',
  'more-steps': 'More steps and restarts do not break more',
  'black-vs-white': 'Black-box attacks do not beat white-box ones',
  'random-noise': 'Attacks beat random noise',
  gradients: 'Loss gradients are informative',
};

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

function check(
  id: HonestyCheck['id'],
  ok: boolean,
  detail: string,
  values: HonestyCheck['values'],
): HonestyCheck {
  return { id, title: TITLES[id], status: ok ? 'pass' : 'warn', detail, values };
}

export function skipped(id: HonestyCheck['id'], reason: string): HonestyCheck {
  return { id, title: TITLES[id], status: 'skip', detail: reason, values: {} };
}

/** PGD with eps = the whole bounds range must leave at most 1% accuracy. */
export function unboundedCheck(m: {
  robustAccuracy: number;
  n: number;
  eps: number;
  steps: number;
}): HonestyCheck {
  const ok = m.robustAccuracy <= UNBOUNDED_MAX_ACCURACY + 1e-12;
  return check(
    'unbounded-eps',
    ok,
    `PGD-${m.steps} at L∞ eps ${m.eps} (the whole input range) leaves ${pct(m.robustAccuracy)} ` +
      `accuracy on ${m.n} examples (${ok ? 'at most' : 'above'} ${pct(UNBOUNDED_MAX_ACCURACY)}` +
      `${ok ? '' : ': the attack cannot reach every input, or the gradient misleads it'}).`,
    { accuracy: m.robustAccuracy, eps: m.eps, steps: m.steps, n: m.n },
  );
}

/** Per attack and norm, robust accuracy may not grow with eps by more than one example. */
export function monotoneCheck(cells: readonly AttackCell[], n: number): HonestyCheck {
  const series = new Map<string, AttackCell[]>();
  for (const c of cells) {
    const key = `${c.attack} ${c.norm}`;
    series.set(key, [...(series.get(key) ?? []), c]);
  }
  const curves = [...series.values()].filter((s) => s.length >= 2);
  if (curves.length === 0) {
    return skipped('monotone-eps', 'No attack ran at two or more budgets of one norm.');
  }
  let worst = { rise: 0, where: '' };
  for (const s of curves) {
    const sorted = [...s].sort((a, b) => a.eps - b.eps);
    for (let k = 1; k < sorted.length; k++) {
      const rise = sorted[k].robustAccuracy - sorted[k - 1].robustAccuracy;
      if (rise > worst.rise) {
        worst = {
          rise,
          where: `${sorted[k].attack} (${sorted[k].norm}) ${pct(sorted[k - 1].robustAccuracy)} at eps ${sorted[k - 1].eps} → ${pct(sorted[k].robustAccuracy)} at eps ${sorted[k].eps}`,
        };
      }
    }
  }
  const tolerance = 1 / n;
  const ok = worst.rise <= tolerance + 1e-12;
  return check(
    'monotone-eps',
    ok,
    worst.rise === 0
      ? `Robust accuracy never grows with eps over ${curves.length} attack curves.`
      : `Largest rise with eps: ${worst.where} (${ok ? 'within' : 'beyond'} the tolerance of one example, ${pct(tolerance)}).`,
    { curves: curves.length, largestRise: worst.rise, tolerance, where: worst.where || null },
  );
}

/**
 * Stronger PGD (more steps, restarts) on a subset must not lower the worst case over the
 * configured attacks by more than 2 points: if it does, the configured attacks had not converged.
 */
export function moreStepsCheck(m: {
  n: number;
  eps: number;
  steps: number;
  restarts: number;
  /** Worst case of the configured attacks on the subset. */
  before: number;
  /** Worst case with the stronger PGD added. */
  after: number;
  /** The stronger PGD alone. */
  strong: number;
  bestWhiteBox: { attack: string; accuracy: number } | null;
}): HonestyCheck {
  const drop = m.before - m.after;
  const ok = drop <= NOTICEABLE_DROP + 1e-12;
  const best = m.bestWhiteBox
    ? `; best configured white-box attack ${m.bestWhiteBox.attack}: ${pct(m.bestWhiteBox.accuracy)}`
    : '';
  return check(
    'more-steps',
    ok,
    `PGD-${m.steps} with ${m.restarts} restarts at L∞ eps ${m.eps} leaves ${pct(m.strong)} on ${m.n} examples${best}; ` +
      `adding it moves the worst case from ${pct(m.before)} to ${pct(m.after)} ` +
      `(${ok ? 'within' : 'more than'} ${pct(NOTICEABLE_DROP)}).`,
    {
      n: m.n,
      eps: m.eps,
      steps: m.steps,
      restarts: m.restarts,
      strong: m.strong,
      before: m.before,
      after: m.after,
      drop,
      bestWhiteBox: m.bestWhiteBox?.attack ?? null,
      bestWhiteBoxAccuracy: m.bestWhiteBox?.accuracy ?? null,
    },
  );
}

/** At each norm and eps, the best black-box attack must not beat the best white-box one by > 2 points. */
export function blackVsWhiteCheck(cells: readonly AttackCell[]): HonestyCheck {
  let worst: { excess: number; where: string; norm: Norm; eps: number } | null = null;
  let compared = 0;
  for (const c of cells) {
    if (c.whiteBox) continue;
    const white = cells.filter((w) => w.whiteBox && w.norm === c.norm && w.eps === c.eps);
    if (white.length === 0) continue;
    compared++;
    const best = white.reduce((a, b) => (b.robustAccuracy < a.robustAccuracy ? b : a));
    const excess = best.robustAccuracy - c.robustAccuracy;
    if (worst === null || excess > worst.excess) {
      worst = {
        excess,
        norm: c.norm,
        eps: c.eps,
        where: `${c.attack} ${pct(c.robustAccuracy)} vs ${best.attack} ${pct(best.robustAccuracy)} at ${c.norm} eps ${c.eps}`,
      };
    }
  }
  if (worst === null) {
    return skipped(
      'black-vs-white',
      'No black-box attack (square, hsj) ran beside a white-box one at the same norm and eps.',
    );
  }
  const ok = worst.excess <= NOTICEABLE_DROP + 1e-12;
  return check(
    'black-vs-white',
    ok,
    `Closest black-box result: ${worst.where} (${ok ? 'not better by more than' : 'better by more than'} ${pct(NOTICEABLE_DROP)}${ok ? '' : ': the gradients mislead the white-box attacks'}).`,
    {
      comparisons: compared,
      excess: worst.excess,
      norm: worst.norm,
      eps: worst.eps,
      where: worst.where,
    },
  );
}

/** Random noise of the same size must leave at least the accuracy of every attack. */
export function randomNoiseCheck(
  noise: readonly { norm: Norm; eps: number; robustAccuracy: number }[],
  cells: readonly AttackCell[],
): HonestyCheck {
  let worst: { excess: number; where: string } | null = null;
  for (const r of noise) {
    for (const c of cells) {
      if (c.norm !== r.norm || c.eps !== r.eps) continue;
      const excess = c.robustAccuracy - r.robustAccuracy;
      if (worst === null || excess > worst.excess) {
        worst = {
          excess,
          where: `${c.attack} ${pct(c.robustAccuracy)} vs noise ${pct(r.robustAccuracy)} at ${c.norm} eps ${c.eps}`,
        };
      }
    }
  }
  if (worst === null) return skipped('random-noise', 'No attack ran at a budget with a noise run.');
  const ok = worst.excess <= 1e-12;
  return check(
    'random-noise',
    ok,
    ok
      ? `Every attack leaves at most the accuracy random noise of the same size leaves (closest: ${worst.where}).`
      : `An attack does worse than random noise of the same size: ${worst.where}.`,
    { excess: worst.excess, where: worst.where, budgets: noise.length },
  );
}

export interface GradientHealth {
  n: number;
  /** Examples whose loss gradient is exactly zero everywhere. */
  zero: number;
  /** Examples whose loss gradient has a NaN or infinite value. */
  nonFinite: number;
}

/** At most 10% of examples may have an all-zero or non-finite loss gradient. */
export function gradientsCheck(attacked: GradientHealth, plain?: GradientHealth): HonestyCheck {
  const bad = (g: GradientHealth) => (g.n === 0 ? 0 : (g.zero + g.nonFinite) / g.n);
  const fraction = bad(attacked);
  const ok = fraction <= MAX_BAD_GRADIENTS + 1e-12;
  const plainNote =
    plain === undefined
      ? ''
      : ` Through the defense as is (no BPDA): ${pct(bad(plain))} (${plain.zero} zero, ${plain.nonFinite} non-finite).`;
  return check(
    'gradients',
    ok,
    `${pct(fraction)} of ${attacked.n} examples have an all-zero (${attacked.zero}) or non-finite ` +
      `(${attacked.nonFinite}) loss gradient (${ok ? 'at most' : 'above'} ${pct(MAX_BAD_GRADIENTS)}` +
      `${ok ? '' : ': gradient masking; gradient attacks see a flat loss'}).${plainNote}`,
    {
      n: attacked.n,
      zero: attacked.zero,
      nonFinite: attacked.nonFinite,
      fraction,
      ...(plain ? { plainFraction: bad(plain) } : {}),
    },
  );
}

/**
 * Counts examples whose gradient of the attack objective ('ce': cross-entropy with its small
 * margin term, what gradient attacks ascend) with respect to the input is all zero or
 * non-finite, at the clean input and the true label.
 */
export async function gradientHealth(
  model: Classifier,
  data: Dataset,
  batchSize: number,
): Promise<GradientHealth> {
  const n = data.shape[0];
  const per = exampleSize(data);
  let zero = 0;
  let nonFinite = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const grad = tf.tidy(() => {
      const x = tf.tensor(data.x.subarray(start * per, end * per), [
        end - start,
        ...data.shape.slice(1),
      ]);
      const labels = tf.tensor1d(data.labels.subarray(start, end), 'int32');
      return tf.grad((z: tf.Tensor) =>
        tf.sum(attackObjective(model.logits(z), labels, false, 'ce')),
      )(x);
    });
    const g = (await grad.data()) as Float32Array;
    grad.dispose();
    for (let i = 0; i < end - start; i++) {
      let allZero = true;
      let finite = true;
      for (let j = i * per; j < (i + 1) * per; j++) {
        if (!Number.isFinite(g[j])) finite = false;
        else if (g[j] !== 0) allZero = false;
      }
      if (!finite) nonFinite++;
      else if (allZero) zero++;
    }
  }
  return { n, zero, nonFinite };
}

/**
 * Per example, 1 if classified correctly both clean (`cleanPredictions`) and after random noise
 * of size eps: L∞ a random sign per value times eps, L2/L1 a Gaussian direction scaled to norm
 * eps; then clipped to the model's bounds. Noise is drawn from `seed`.
 */
export async function noiseRobust(
  model: Classifier,
  data: Dataset,
  cleanPredictions: ArrayLike<number>,
  norm: Norm,
  eps: number,
  seed: number,
  batchSize: number,
  /** A detector's reject label: rejecting the noisy input counts as robust. */
  reject: number | null = null,
): Promise<number[]> {
  const n = data.shape[0];
  const per = exampleSize(data);
  const rng = new Rng(seed);
  const [lo, hi] = model.bounds;
  const out: number[] = [];
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const shape = [end - start, ...data.shape.slice(1)];
    const pred = tf.tidy(() => {
      const x = tf.tensor(data.x.subarray(start * per, end * per), shape);
      let delta: tf.Tensor;
      if (norm === 'linf') {
        delta = tf.mul(
          tf.sign(tf.sub(tf.randomUniform(shape, 0, 1, 'float32', rng.nextSeed()), 0.5)),
          eps,
        );
      } else {
        const d = tf.randomNormal(shape, 0, 1, 'float32', rng.nextSeed());
        const axes = shape.slice(1).map((_, k) => k + 1);
        const size =
          norm === 'l2' ? tf.sqrt(tf.sum(tf.square(d), axes, true)) : tf.sum(tf.abs(d), axes, true);
        delta = tf.mul(tf.div(d, tf.maximum(size, 1e-12)), eps);
      }
      return tf.argMax(model.logits(tf.clipByValue(tf.add(x, delta), lo, hi)), 1);
    });
    const p = await pred.data();
    pred.dispose();
    for (let i = 0; i < end - start; i++) {
      const y = data.labels[start + i];
      out.push(cleanPredictions[start + i] === y && (p[i] === y || p[i] === reject) ? 1 : 0);
    }
  }
  return out;
}
