/**
 * LiRA, the likelihood-ratio attack of Carlini et al. 2022 ("Membership Inference Attacks From
 * First Principles"). Per candidate example and per query (augmented copy), the logit-scaled
 * confidence φ = log(p_y / (1 − p_y)) of the reference models that trained on it (IN) and of
 * those that did not (OUT) is fitted with a Gaussian; the target's φ is then scored:
 *
 * - online: log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²), the log likelihood ratio;
 * - offline (OUT models only): −log P(Z > φ), Z ~ N(μ_out, σ_out²): the one-sided test of the
 *   paper (members have a larger φ than OUT models give), as a −log p-value.
 *
 * Several queries are combined as the authors' code does: the per-query scores are averaged (a
 * diagonal-covariance Gaussian over queries). Also as in that code: the location is the median
 * of the observations (robust to a diverged reference model), the scale their population std,
 * and the fixed-variance option uses one global std of all IN observations for both fits online
 * (of all OUT observations offline), which is what the paper recommends under 64 reference
 * models. Guards the code lacks: an example with fewer than 2 observations on one side takes the
 * global std, every std is floored at `minStd`, and an example with no IN (online) or no OUT
 * reference model is refused by name rather than scored from nothing.
 *
 * Threat model: scores (logits) of the target on the candidates and their labels; reference
 * models of the same training recipe whose membership on the candidates is known.
 */
import { z } from 'zod';
import { check } from '../../../errors.js';
import { mean, median, normalLogPdf, normalLogSurvival, populationStd } from './gaussian-fit.js';
import { checkMembershipInput, type MembershipInput, type MembershipScores } from './membership.js';
import { logitScaledConfidence } from './signals.js';

/** Below this many reference models Carlini et al. 2022 fit one global variance instead. */
const FEW_REFERENCES = 64;

export const liraSchema = z.strictObject({
  mode: z
    .enum(['online', 'offline'])
    .default('online')
    .describe(
      'online: likelihood ratio of IN vs OUT Gaussians; offline: one-sided test against the OUT Gaussian (no reference model need train on the candidates)',
    ),
  fixedVariance: z
    .boolean()
    .default(false)
    .describe('one global variance instead of per-example ones (better with few reference models)'),
  augmented: z
    .boolean()
    .default(true)
    .describe('average the scores over every query given (augmented copies) instead of the first'),
  location: z
    .enum(['median', 'mean'])
    .default('median')
    .describe(
      "location of each Gaussian fit: the observations' median (the authors' code) or mean",
    ),
  minStd: z
    .number()
    .positive()
    .default(1e-3)
    .describe('floor on every fitted standard deviation of φ, in logit units'),
});
export type LiraConfig = z.output<typeof liraSchema>;

/** Gaussian fits per query and example: `mean[q][i]`, `std[q][i]`, with observation counts. */
export interface GaussianFits {
  mean: Float64Array[];
  std: Float64Array[];
  /** Reference models on this side per example. */
  count: Int32Array;
  /** The global std (fixed variance, and the fallback for examples with < 2 observations). */
  globalStd: number;
  /** Stds raised to `minStd` or replaced by the global one. */
  floored: number;
  fallbacks: number;
}

/**
 * Fits the side `side` (1 = IN, 0 = OUT) of every example from `phi[j][q][i]` (reference model
 * j, query q, example i) and `membership[j][i]`. `std` overrides the global std (online fixed
 * variance shares the IN one).
 */
export function fitSide(
  phi: readonly (readonly Float64Array[])[],
  membership: readonly ArrayLike<number>[],
  side: 0 | 1,
  c: Pick<LiraConfig, 'location' | 'fixedVariance' | 'minStd'>,
  std?: number,
): GaussianFits {
  const queries = phi[0].length;
  const n = phi[0][0].length;
  const count = Int32Array.from({ length: n }, (_, i) =>
    membership.reduce((s, row) => s + (row[i] === side ? 1 : 0), 0),
  );
  const all: number[] = [];
  for (const [j, row] of membership.entries()) {
    for (const p of phi[j]) for (let i = 0; i < n; i++) if (row[i] === side) all.push(p[i]);
  }
  const globalStd = std ?? (all.length > 0 ? populationStd(all) : 0);
  const fits: GaussianFits = { mean: [], std: [], count, globalStd, floored: 0, fallbacks: 0 };
  const obs = new Float64Array(phi.length);
  for (let q = 0; q < queries; q++) {
    const mu = new Float64Array(n);
    const sd = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let m = 0;
      for (const [j, row] of membership.entries()) if (row[i] === side) obs[m++] = phi[j][q][i];
      const o = obs.subarray(0, m);
      mu[i] = c.location === 'median' ? median(o) : mean(o);
      let s = c.fixedVariance ? globalStd : populationStd(o);
      if (!c.fixedVariance && m < 2) {
        s = globalStd;
        fits.fallbacks++;
      }
      if (!(s >= c.minStd)) {
        s = c.minStd;
        fits.floored++;
      }
      sd[i] = s;
    }
    fits.mean.push(mu);
    fits.std.push(sd);
  }
  return fits;
}

/** The target's score per example from its `phi[q][i]` and the fits (IN only when online). */
export function liraScores(
  phi: readonly Float64Array[],
  out: GaussianFits,
  fitIn?: GaussianFits,
): Float64Array {
  const n = phi[0].length;
  const scores = new Float64Array(n);
  for (const [q, p] of phi.entries()) {
    for (let i = 0; i < n; i++) {
      const lOut = fitIn
        ? normalLogPdf(p[i], out.mean[q][i], out.std[q][i])
        : normalLogSurvival((p[i] - out.mean[q][i]) / out.std[q][i]);
      scores[i] += fitIn ? normalLogPdf(p[i], fitIn.mean[q][i], fitIn.std[q][i]) - lOut : -lOut;
    }
  }
  for (let i = 0; i < n; i++) scores[i] /= phi.length;
  return scores;
}

function refuseEmpty(count: Int32Array, side: 'IN' | 'OUT', k: number): void {
  const i = count.indexOf(0);
  check(
    i < 0,
    () =>
      `lira: example ${i} has no ${side} reference model (of ${k}); ${side === 'IN' ? "use mode 'offline' or " : ''}train more reference models`,
  );
}

/**
 * LiRA on `input`: scores (higher = member); online, also decisions at likelihood ratio 1 (the
 * Bayes rule for equal priors, as in a balanced membership design).
 */
export function lira(input: MembershipInput, c: LiraConfig): MembershipScores {
  checkMembershipInput(input, 'lira');
  const k = input.references.length;
  check(k > 0, () => 'lira: needs reference models, got none');
  const use = (logits: MembershipInput['target']) =>
    (c.augmented ? logits : logits.slice(0, 1)).map((l) =>
      logitScaledConfidence(l, input.labels, input.numClasses),
    );
  const phiRefs = input.references.map(use);
  const out0 = fitSide(phiRefs, input.referenceMembership, 0, c);
  refuseEmpty(out0.count, 'OUT', k);
  let fitIn: GaussianFits | undefined;
  let fitOut = out0;
  if (c.mode === 'online') {
    fitIn = fitSide(phiRefs, input.referenceMembership, 1, c);
    refuseEmpty(fitIn.count, 'IN', k);
    // As the authors' code: online fixed variance shares the IN observations' global std.
    if (c.fixedVariance)
      fitOut = fitSide(phiRefs, input.referenceMembership, 0, c, fitIn.globalStd);
  }
  const scores = liraScores(use(input.target), fitOut, fitIn);
  const warnings: string[] = [];
  for (const [side, f] of [
    ['OUT', fitOut],
    ['IN', fitIn],
  ] as const) {
    if (f === undefined) continue;
    if (f.fallbacks > 0) {
      warnings.push(`${f.fallbacks} ${side} fits had fewer than 2 observations: global std used`);
    }
    if (f.floored > 0) warnings.push(`${f.floored} ${side} stds raised to minStd ${c.minStd}`);
  }
  if (!c.fixedVariance && k < FEW_REFERENCES) {
    warnings.push(
      `per-example variances from ${k} reference models are noisy: Carlini et al. fix the variance below ${FEW_REFERENCES} (fixedVariance=true)`,
    );
  }
  const range = (a: Int32Array) => [
    a.reduce((m, v) => Math.min(m, v)),
    a.reduce((m, v) => Math.max(m, v)),
  ];
  return {
    scores,
    ...(fitIn ? { decisions: Uint8Array.from(scores, (s) => (s >= 0 ? 1 : 0)) } : {}),
    details: {
      outModels: range(fitOut.count),
      ...(fitIn ? { inModels: range(fitIn.count), globalStdIn: fitIn.globalStd } : {}),
      globalStdOut: fitOut.globalStd,
    },
    warnings,
  };
}
