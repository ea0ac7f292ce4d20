/**
 * The shadow-model attack of Shokri et al. 2017: shadow models trained like the target (here the
 * reference models, with known membership) give labelled examples of what a model outputs on its
 * members and on non-members; an attack classifier learns to tell them apart and is then applied
 * to the target's outputs. Shokri et al. train one attack model per class on the probability
 * vector; Salem et al. 2019 (ML-Leaks) showed one global model on the sorted probabilities does
 * as well, with no per-class data to split.
 *
 * Threat model: the target's scores (probabilities, from its logits) on the candidates and their
 * labels; shadow models from the same data distribution and training recipe. The attack sees the
 * first query only (the un-augmented example), as the original attack does.
 */
import { z } from 'zod';
import { check } from '../../../errors.js';
import { seedSchema } from '../../../objectives/threat-model.js';
import { fitMlp, type Mlp, mlpLogits } from './attack-model.js';
import { checkMembershipInput, type MembershipInput, type MembershipScores } from './membership.js';

export const shadowSchema = z.strictObject({
  features: z
    .enum(['sorted', 'sorted-log', 'label'])
    .default('sorted')
    .describe(
      "the attack model's input: 'sorted' probabilities (descending), 'sorted-log' log-probabilities (resolves confident outputs), 'label' probabilities then the one-hot true class",
    ),
  perClass: z
    .boolean()
    .default(true)
    .describe('one attack model per true class (Shokri et al.) instead of one global model'),
  hidden: z
    .number()
    .int()
    .min(0)
    .default(64)
    .describe('hidden ReLU units of the attack model (0: logistic regression)'),
  epochs: z.number().int().min(1).default(20).describe('training epochs of the attack model'),
  batchSize: z.number().int().min(1).default(128).describe('attack-model minibatch size'),
  learningRate: z.number().positive().default(1e-3).describe('attack-model Adam learning rate'),
  l2: z.number().min(0).default(1e-4).describe('attack-model L2 penalty on the weights'),
  seed: seedSchema
    .default(0)
    .describe("seed of the attack model's initial weights and batch order"),
});
export type ShadowConfig = z.output<typeof shadowSchema>;

/** Feature columns for `numClasses` classes. */
export function featureSize(features: ShadowConfig['features'], k: number): number {
  return features === 'label' ? 2 * k : k;
}

/** Attack-model features of every example (`[i·d + t]`) from logits `[i·K + k]`. */
export function shadowFeatures(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  k: number,
  features: ShadowConfig['features'],
): Float64Array {
  const n = labels.length;
  const d = featureSize(features, k);
  const out = new Float64Array(n * d);
  const logp = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    let m = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) m = Math.max(m, logits[i * k + c]);
    let s = 0;
    for (let c = 0; c < k; c++) s += Math.exp(logits[i * k + c] - m);
    for (let c = 0; c < k; c++) logp[c] = logits[i * k + c] - m - Math.log(s);
    const row = out.subarray(i * d, (i + 1) * d);
    if (features === 'label') {
      for (let c = 0; c < k; c++) row[c] = Math.exp(logp[c]);
      row[k + labels[i]] = 1;
      continue;
    }
    const sorted = Float64Array.from(logp).sort().reverse();
    for (let c = 0; c < k; c++) row[c] = features === 'sorted' ? Math.exp(sorted[c]) : sorted[c];
  }
  return out;
}

/** The rows `keep` of `features` (d columns), in that order. */
function rowsAt(features: Float64Array, d: number, keep: readonly number[]): Float64Array {
  const rows = new Float64Array(keep.length * d);
  for (const [r, i] of keep.entries()) rows.set(features.subarray(i * d, (i + 1) * d), r * d);
  return rows;
}

/** Scores (the attack model's logit) and decisions (logit ≥ 0) for the target's candidates. */
export function shadowAttack(input: MembershipInput, c: ShadowConfig): MembershipScores {
  const { n } = checkMembershipInput(input, 'shadow');
  const refs = input.references.length;
  check(refs > 0, () => 'shadow: needs shadow (reference) models, got none');
  const k = input.numClasses;
  const d = featureSize(c.features, k);
  // Shadow training set: every (shadow model, candidate) pair, labelled by membership.
  const all = new Float64Array(refs * n * d);
  const inOut = new Uint8Array(refs * n);
  const cls = new Int32Array(refs * n);
  for (const [j, r] of input.references.entries()) {
    all.set(shadowFeatures(r[0], input.labels, k, c.features), j * n * d);
    for (let i = 0; i < n; i++) {
      inOut[j * n + i] = input.referenceMembership[j][i];
      cls[j * n + i] = input.labels[i];
    }
  }
  const mlp = { ...c };
  const target = shadowFeatures(input.target[0], input.labels, k, c.features);
  const warnings: string[] = [];
  let global: Mlp | undefined;
  const globalModel = () => {
    global ??= fitMlp(all, inOut, d, mlp);
    return global;
  };
  const scores = new Float64Array(n);
  const groups = c.perClass ? Array.from({ length: k }, (_, y) => y) : [-1];
  for (const y of groups) {
    const targets = Array.from({ length: n }, (_, i) => i).filter(
      (i) => y < 0 || input.labels[i] === y,
    );
    if (targets.length === 0) continue;
    let model: Mlp;
    if (y < 0) model = globalModel();
    else {
      const rowsOf = Array.from({ length: refs * n }, (_, t) => t).filter((t) => cls[t] === y);
      const labels = Uint8Array.from(rowsOf, (t) => inOut[t]);
      if (labels.includes(0) && labels.includes(1)) {
        model = fitMlp(rowsAt(all, d, rowsOf), labels, d, { ...mlp, seed: (c.seed + y) >>> 0 });
      } else {
        warnings.push(
          `class ${y}: shadow data lack members or non-members; the global model is used`,
        );
        model = globalModel();
      }
    }
    const logits = mlpLogits(model, rowsAt(target, d, targets));
    for (const [r, i] of targets.entries()) scores[i] = logits[r];
  }
  return {
    scores,
    decisions: Uint8Array.from(scores, (s) => (s >= 0 ? 1 : 0)),
    details: { shadowRows: refs * n, attackModels: c.perClass ? k : 1 },
    warnings,
  };
}
