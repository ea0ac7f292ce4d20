/**
 * Synthetic model outputs for the membership tests, with a known generative story: example i has
 * a difficulty d_i ~ N(0, spread²); model j's logit-scaled confidence on it is
 * φ = d_i + shift·[j trained on i] + N(0, noise²) per query. The logits encoding φ put
 * φ + log(K − 1) on the true class and 0 elsewhere, so that log(p_y / (1 − p_y)) = φ exactly.
 */

import type {
  MembershipInput,
  PopulationInput,
} from '../../../../src/attacks/privacy/membership/index.js';
import { Rng } from '../../../../src/engine/rng.js';

export interface SyntheticOptions {
  n: number;
  /** Reference models (the target is extra). */
  references: number;
  k?: number;
  queries?: number;
  shift?: number;
  spread?: number;
  noise?: number;
  /** false: the target never trained on anything (its outputs look like an OUT model's). */
  targetSeen?: boolean;
  /** Probability that a reference model trains on a candidate (0: the offline setting), or one per reference. */
  referenceRate?: number | number[];
  /** Every candidate IN for exactly half the reference models (the balanced design). */
  balanced?: boolean;
  /** Population samples z (never trained on by any model). */
  population?: number;
  seed?: number;
}

/** Logits `[i·K + c]` whose logit-scaled confidence on `labels` is `phi`. */
export function logitsFromPhi(phi: ArrayLike<number>, labels: ArrayLike<number>, k: number) {
  const out = new Float32Array(phi.length * k);
  for (let i = 0; i < phi.length; i++) out[i * k + labels[i]] = phi[i] + Math.log(k - 1);
  return out;
}

export function synthetic(o: SyntheticOptions) {
  const k = o.k ?? 4;
  const queries = o.queries ?? 1;
  const [shift, spread, noise] = [o.shift ?? 2, o.spread ?? 1, o.noise ?? 0.5];
  const rng = new Rng(o.seed ?? 1);
  const labels = Int32Array.from({ length: o.n }, () => rng.int(k));
  const difficulty = Float64Array.from({ length: o.n }, () => spread * rng.normal());
  const models = o.references + 1;
  const rate = o.referenceRate ?? 0.5;
  const rateOf = (j: number) => (j === 0 ? 0.5 : typeof rate === 'number' ? rate : rate[j - 1]);
  const membership = Array.from({ length: models }, (_, j) =>
    Uint8Array.from({ length: o.n }, () => (rng.next() < rateOf(j) ? 1 : 0)),
  );
  if (o.balanced) {
    for (let i = 0; i < o.n; i++) {
      const p = rng.permutation(o.references);
      for (let t = 0; t < o.references; t++) membership[1 + p[t]][i] = t < o.references / 2 ? 1 : 0;
    }
  }
  // phi[j][q][i] in float64, logits from it in float32 (as a model would give).
  const phi = membership.map((row, j) =>
    Array.from({ length: queries }, () =>
      Float64Array.from(
        { length: o.n },
        (_, i) =>
          difficulty[i] +
          (j === 0 && o.targetSeen === false ? 0 : shift * row[i]) +
          noise * rng.normal(),
      ),
    ),
  );
  const logits = phi.map((qs) => qs.map((p) => logitsFromPhi(p, labels, k)));
  let population: PopulationInput | undefined;
  if (o.population) {
    const m = o.population;
    const zl = Int32Array.from({ length: m }, () => rng.int(k));
    const zd = Float64Array.from({ length: m }, () => spread * rng.normal());
    const zl0 = membership.map(() =>
      Array.from({ length: queries }, () =>
        logitsFromPhi(
          Float64Array.from({ length: m }, (_, i) => zd[i] + noise * rng.normal()),
          zl,
          k,
        ),
      ),
    );
    population = { labels: zl, target: zl0[0], references: zl0.slice(1) };
  }
  const input: MembershipInput = {
    numClasses: k,
    labels,
    target: logits[0],
    references: logits.slice(1),
    referenceMembership: membership.slice(1),
    ...(population ? { population } : {}),
  };
  return { input, targetMembership: membership[0], phi, membership, labels };
}
