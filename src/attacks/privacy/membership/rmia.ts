/**
 * RMIA, the relative membership-inference attack of Zarifzadeh et al. 2024 ("Low-Cost High-Power
 * Membership Inference Attacks"). With Pr(x|θ) the target's probability of x's true class and
 * Pr(x) its average over reference models, x is compared with population samples z (never
 * trained on by the target, as far as the attacker knows):
 *
 *   LR(x, z) = (Pr(x|θ) / Pr(x)) / (Pr(z|θ) / Pr(z)),   score(x) = fraction of z with LR ≥ γ.
 *
 * Online, Pr(x) averages every reference model (some trained on x). Offline, only OUT models
 * exist and the paper's approximation stands in for the IN half:
 * Pr(x) = ½((1 + a)·Pr_OUT(x) + (1 − a)), with `a` tuned on reference models (`tuneRmiaA`).
 * z's Pr(z) is computed the same way (its OUT models are all of them unless stated otherwise).
 *
 * Details follow the authors' code (ml_privacy_meter): Pr(·|θ) is the softmax at a temperature;
 * the reference average may be a trimmed mean; with several queries (augmented copies), x
 * dominates z when LR ≥ γ holds for a strict majority of the queries (a tie is not a majority,
 * as their mode-of-booleans gives). The comparison is ≥ as in the paper (the code has >; they
 * differ only on exact ties). Everything is computed in log space, so no ratio is 0/0.
 */
import { z } from 'zod';
import { check } from '../../../errors.js';
import {
  checkMembershipInput,
  type MembershipInput,
  type MembershipScores,
  type QueryLogits,
} from './membership.js';
import { curveAuc, rocCurve } from './roc.js';
import { trueClassLogProbability } from './signals.js';

export const rmiaSchema = z.strictObject({
  mode: z
    .enum(['online', 'offline'])
    .default('online')
    .describe(
      'online: Pr(x) averages every reference model; offline: only OUT models, with the a-approximation for the IN half',
    ),
  a: z
    .number()
    .min(0)
    .max(1)
    .default(0.3)
    .describe('offline: Pr(x) = ((1 + a)·Pr_OUT(x) + (1 − a)) / 2'),
  tuneA: z
    .boolean()
    .default(false)
    .describe(
      'offline: choose a from 0, 0.1, …, 1 by attacking the first reference model with the others (uses reference membership only)',
    ),
  gamma: z.number().positive().default(1).describe('x dominates z when LR(x, z) ≥ gamma'),
  temperature: z.number().positive().default(1).describe('softmax temperature of Pr(x|θ)'),
  trim: z
    .number()
    .min(0)
    .max(0.45)
    .default(0)
    .describe('fraction cut from each end before averaging over reference models (trimmed mean)'),
  augmented: z
    .boolean()
    .default(true)
    .describe('compare over every query given (majority vote) instead of the first'),
});
export type RmiaConfig = z.output<typeof rmiaSchema>;

/** log of the trimmed mean of exp(v) (cut ⌊trim·n⌋ from each end, keeping at least one). */
function logTrimmedMeanExp(v: number[], trim: number): number {
  v.sort((x, y) => x - y);
  const cut = Math.min(Math.floor(trim * v.length), Math.floor((v.length - 1) / 2));
  const kept = v.slice(cut, v.length - cut);
  const m = kept[kept.length - 1];
  let s = 0;
  for (const x of kept) s += Math.exp(x - m);
  return m + Math.log(s / kept.length);
}

/**
 * log(Pr(x|θ) / Pr(x)) per query and example, `[q][i]`, from the target's and the references'
 * log-probabilities. `membership[j][i]` says which references are IN (offline skips them).
 */
export function logRatios(
  target: readonly Float64Array[],
  refs: readonly (readonly Float64Array[])[],
  membership: readonly ArrayLike<number>[] | undefined,
  c: Pick<RmiaConfig, 'mode' | 'a' | 'trim'>,
  what: string,
): Float64Array[] {
  const n = target[0].length;
  const logA = [Math.log((1 + c.a) / 2), Math.log((1 - c.a) / 2)];
  return target.map((lp, q) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const vals: number[] = [];
      for (const [j, r] of refs.entries()) {
        if (c.mode === 'offline' && membership !== undefined && membership[j][i] === 1) continue;
        vals.push(r[q][i]);
      }
      check(
        vals.length > 0,
        () =>
          `rmia: ${what} ${i} has no ${c.mode === 'offline' ? "OUT reference model (offline reads OUT models only: use mode 'online', or reference models that did not train on it)" : 'reference model'}`,
      );
      let logPx = logTrimmedMeanExp(vals, c.trim);
      if (c.mode === 'offline') {
        // log(e^{log((1+a)/2) + logPout} + (1−a)/2), stable for every a in [0, 1].
        const u = logA[0] + logPx;
        const w = logA[1];
        const hi = Math.max(u, w);
        logPx = hi + Math.log(Math.exp(u - hi) + Math.exp(w - hi));
      }
      out[i] = lp[i] - logPx;
    }
    return out;
  });
}

/** Index of the first j with `!(x − sorted[j] >= lg)` in an ascending `sorted` (binary search). */
function countDominated(sorted: Float64Array, x: number, lg: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x - sorted[mid] >= lg) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** score(x) = fraction of z dominated (LR ≥ γ in a strict majority of queries). */
export function rmiaScoresFromRatios(
  lx: readonly Float64Array[],
  lz: readonly Float64Array[],
  gamma: number,
): Float64Array {
  const lg = Math.log(gamma);
  const n = lx[0].length;
  const m = lz[0].length;
  const scores = new Float64Array(n);
  if (lx.length === 1) {
    // One query: LR ≥ γ is monotone in z's ratio, so a sorted copy and a binary search suffice.
    const sorted = Float64Array.from(lz[0]).sort();
    for (let i = 0; i < n; i++) scores[i] = countDominated(sorted, lx[0][i], lg) / m;
    return scores;
  }
  const need = Math.floor(lx.length / 2) + 1;
  for (let i = 0; i < n; i++) {
    let dominated = 0;
    for (let j = 0; j < m; j++) {
      let votes = 0;
      // Stop once the majority is reached or out of reach.
      for (let q = 0; q < lx.length && votes < need && votes + lx.length - q >= need; q++) {
        if (lx[q][i] - lz[q][j] >= lg) votes++;
      }
      if (votes >= need) dominated++;
    }
    scores[i] = dominated / m;
  }
  return scores;
}

function scoresWith(input: MembershipInput, c: RmiaConfig): Float64Array {
  const p = input.population;
  check(p !== undefined, () => 'rmia: needs population samples z (input.population)');
  const use = (l: QueryLogits, labels: ArrayLike<number>) =>
    (c.augmented ? l : l.slice(0, 1)).map((x) =>
      trueClassLogProbability(x, labels, input.numClasses, c.temperature),
    );
  const lx = logRatios(
    use(input.target, input.labels),
    input.references.map((r) => use(r, input.labels)),
    input.referenceMembership,
    c,
    'candidate',
  );
  const lz = logRatios(
    use(p.target, p.labels),
    p.references.map((r) => use(r, p.labels)),
    p.referenceMembership,
    c,
    'population sample',
  );
  return rmiaScoresFromRatios(lx, lz, c.gamma);
}

/**
 * Offline `a` chosen as the authors' code does, without the target: the first reference model
 * plays the target, the others its references, and the a in 0, 0.1, …, 1 with the best AUC
 * against its known membership wins (the first, on ties).
 */
export function tuneRmiaA(input: MembershipInput, c: RmiaConfig): { a: number; auc: number } {
  const p = input.population;
  check(p !== undefined, () => 'rmia: needs population samples z (input.population)');
  check(input.references.length >= 2, () => 'rmia: tuning a needs at least 2 reference models');
  const rest = <T>(a: readonly T[]) => a.slice(1);
  const stand: MembershipInput = {
    numClasses: input.numClasses,
    labels: input.labels,
    target: input.references[0],
    references: rest(input.references),
    referenceMembership: rest(input.referenceMembership),
    population: {
      labels: p.labels,
      target: p.references[0],
      references: rest(p.references),
      ...(p.referenceMembership ? { referenceMembership: rest(p.referenceMembership) } : {}),
    },
  };
  let best = { a: 0, auc: -1 };
  for (let t = 0; t <= 10; t++) {
    const a = t / 10;
    const scores = scoresWith(stand, { ...c, mode: 'offline', a });
    const auc = curveAuc(rocCurve(scores, input.referenceMembership[0]));
    if (auc > best.auc) best = { a, auc };
  }
  return best;
}

/** RMIA on `input` (which must carry `population`): scores in [0, 1], higher = member. */
export function rmia(input: MembershipInput, c: RmiaConfig): MembershipScores {
  checkMembershipInput(input, 'rmia');
  check(input.references.length > 0, () => 'rmia: needs reference models, got none');
  const tuned = c.mode === 'offline' && c.tuneA ? tuneRmiaA(input, c) : undefined;
  const config = tuned ? { ...c, a: tuned.a } : c;
  return {
    scores: scoresWith(input, config),
    details: {
      a: c.mode === 'offline' ? config.a : undefined,
      ...(tuned ? { tunedAuc: tuned.auc } : {}),
      population: input.population?.labels.length,
    },
    warnings: [],
  };
}
