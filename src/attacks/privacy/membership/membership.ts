/**
 * What every membership-inference attack here reads and returns. The attacks work on model
 * outputs only: the logits of a target model and of reference ("shadow") models on the same
 * candidate examples, under one or more queries (augmented copies), plus which examples each
 * reference model trained on. Training and querying the models is the caller's part
 * (`reference-models.ts`); an attack is a pure function of these arrays.
 *
 * The target's own membership is never part of the input: an attack cannot read it, so no
 * threshold or fit can be tuned on the members it is evaluated on. Only `evaluateMembership`
 * (in `registry.ts`) sees it, after the scores are fixed.
 */
import { check } from '../../../errors.js';

/** One model's logits on n examples, one array per query: `logits[q][i·numClasses + k]`. */
export type QueryLogits = readonly ArrayLike<number>[];

/** Outputs on population samples z (RMIA's pairwise comparison), never candidates themselves. */
export interface PopulationInput {
  /** True classes of the population samples `[m]`. */
  labels: ArrayLike<number>;
  /** The target's logits on them, per query (the same queries as the candidates'). */
  target: QueryLogits;
  /** Each reference model's logits on them, per query. */
  references: readonly QueryLogits[];
  /** `[j][z]` = 1 when reference j trained on sample z; absent: no reference did. */
  referenceMembership?: readonly ArrayLike<number>[];
}

export interface MembershipInput {
  numClasses: number;
  /** True classes of the candidate examples `[n]`. */
  labels: ArrayLike<number>;
  /** The target model's logits on the candidates, per query. */
  target: QueryLogits;
  /** Each reference model's logits on the candidates, per query (same queries as the target). */
  references: readonly QueryLogits[];
  /** `[j][i]` = 1 when reference model j trained on candidate i, else 0. */
  referenceMembership: readonly ArrayLike<number>[];
  /** Population samples z, for attacks that compare against them (RMIA). */
  population?: PopulationInput;
}

/** What an attack returns before anyone looks at the target's membership. */
export interface MembershipScores {
  /** Per candidate: higher means more likely a member of the target's training set. */
  scores: Float64Array;
  /** Per candidate, 1 = member: the attack's own hard decision, when it has a rule for one. */
  decisions?: Uint8Array;
  /** Things worth recording: thresholds in the signal's units, fit sizes. */
  details: Record<string, unknown>;
  /** Conditions the caller should know (a class without reference data, a variance floored). */
  warnings: string[];
}

/** Candidates and queries of an input. */
export interface InputSize {
  n: number;
  queries: number;
}

function checkLogits(
  logits: QueryLogits,
  n: number,
  k: number,
  queries: number,
  what: string,
  fn: string,
): void {
  check(
    logits.length === queries,
    () => `${fn}: ${what} has ${logits.length} queries, expected ${queries}`,
  );
  for (const [q, a] of logits.entries()) {
    check(
      a.length === n * k,
      () => `${fn}: ${what} query ${q} has ${a.length} logits, expected ${n}×${k} = ${n * k}`,
    );
    let t = 0;
    while (t < a.length && Number.isFinite(a[t])) t++;
    check(t === a.length, () => `${fn}: ${what} query ${q} has a non-finite logit at ${t}`);
  }
}

function checkLabels(labels: ArrayLike<number>, k: number, what: string, fn: string): void {
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    check(
      Number.isInteger(y) && y >= 0 && y < k,
      () => `${fn}: ${what} label ${i} must be a class in [0, ${k}), got ${y}`,
    );
  }
}

function checkMembership(rows: readonly ArrayLike<number>[], n: number, what: string, fn: string) {
  for (const [j, row] of rows.entries()) {
    check(
      row.length === n,
      () => `${fn}: ${what} row ${j} has ${row.length} entries, expected ${n}`,
    );
    let i = 0;
    while (i < n && (row[i] === 0 || row[i] === 1)) i++;
    check(i === n, () => `${fn}: ${what} row ${j} must hold 0/1, got ${row[i]} at ${i}`);
  }
}

/**
 * Checks every array of `input` against the others (counts, lengths, finite logits, labels in
 * range, 0/1 membership) and returns its size. Errors name the function and the array.
 */
export function checkMembershipInput(input: MembershipInput, fn: string): InputSize {
  const k = input.numClasses;
  check(Number.isInteger(k) && k >= 2, () => `${fn}: numClasses must be an integer >= 2, got ${k}`);
  const n = input.labels.length;
  check(n > 0, () => `${fn}: no candidate examples`);
  const queries = input.target.length;
  check(queries > 0, () => `${fn}: the target has no queries`);
  checkLabels(input.labels, k, 'candidate', fn);
  checkLogits(input.target, n, k, queries, 'target', fn);
  check(
    input.referenceMembership.length === input.references.length,
    () =>
      `${fn}: ${input.references.length} reference models but ${input.referenceMembership.length} membership rows`,
  );
  for (const [j, r] of input.references.entries()) {
    checkLogits(r, n, k, queries, `reference ${j}`, fn);
  }
  checkMembership(input.referenceMembership, n, 'referenceMembership', fn);
  const p = input.population;
  if (p !== undefined) {
    const m = p.labels.length;
    check(m > 0, () => `${fn}: the population has no samples`);
    checkLabels(p.labels, k, 'population', fn);
    checkLogits(p.target, m, k, queries, 'population target', fn);
    check(
      p.references.length === input.references.length,
      () =>
        `${fn}: the population has outputs of ${p.references.length} reference models, expected ${input.references.length}`,
    );
    for (const [j, r] of p.references.entries()) {
      checkLogits(r, m, k, queries, `population reference ${j}`, fn);
    }
    if (p.referenceMembership !== undefined) {
      check(
        p.referenceMembership.length === p.references.length,
        () =>
          `${fn}: ${p.references.length} population reference outputs but ${p.referenceMembership?.length} membership rows`,
      );
      checkMembership(p.referenceMembership, m, 'population referenceMembership', fn);
    }
  }
  return { n, queries };
}
