/**
 * An AutoAttack-style ensemble (Croce & Hein, ICML 2020): APGD-CE, then targeted APGD-DLR
 * (APGD-T), then the black-box Square attack, each run only on the examples every earlier member
 * left classified correctly. The result is the per-example worst case: an example counts as robust
 * only if no member broke it, and `brokenBy` names the member that did (or 'clean' when the model
 * already misclassified the clean input). Members differ in kind on purpose: a white-box loss
 * without softmax saturation (DLR) and a gradient-free search catch gradient masking that a
 * single PGD-CE would report as robustness.
 *
 * Threat model: white-box (APGD members) plus score-based black-box (Square), L∞ or L2 ball of
 * radius `eps`, untargeted. Shapes: x [batch, ...inputShape] in model.bounds; labels [batch] int32.
 * Every member enforces the threat model itself; the assembled batch is enforced again and each
 * "broken" claim re-checked on it, so a member's float edge case never counts as a success.
 * Caller owns `result.xAdv`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { Rng } from '../../engine/rng.js';
import type { Classifier } from '../../models/classifier.js';
import type { AttackResult, AttackRunOptions } from '../result.js';
import { createApgd } from './apgd.js';
import { queryClassifierFrom } from './black-box.js';
import { evasionAttack } from './factory.js';
import { checkBatch, parseWith } from './objective.js';
import { enforceThreatModel, perturbationNorms } from './projection.js';
import { createSquare } from './square.js';

export const AUTO_MEMBERS = ['apgd-ce', 'apgd-dlr', 'apgd-t', 'square'] as const;
export type AutoMember = (typeof AUTO_MEMBERS)[number];

export const autoConfigSchema = z
  .object({
    eps: z.number().min(0),
    norm: z.enum(['linf', 'l2']).default('linf'),
    /** Members in the order they run; AutoAttack's "standard" version minus FAB-T. */
    attacks: z.array(z.enum(AUTO_MEMBERS)).min(1).default(['apgd-ce', 'apgd-t', 'square']),
    /** APGD iterations per run. */
    steps: z.number().int().min(1).default(100),
    /** APGD-T: target classes tried per example (the highest-ranked other classes). */
    numTargets: z.number().int().min(1).default(9),
    /** Square: query budget per example. */
    maxQueries: z.number().int().min(1).default(5000),
    seed: z.number().int().min(0).max(0xffffffff).default(0),
  })
  .strict();
export type AutoConfigInput = z.input<typeof autoConfigSchema>;
export type AutoConfig = z.infer<typeof autoConfigSchema>;

/**
 * `onProgress` hears `done` members of `total` (configured), the running member's finished share
 * of its iterations or queries counted as a fraction. Untargeted: `targetLabels` is not read.
 */
export interface AutoOptions extends AttackRunOptions {
  /** Called when a member starts, with the number of examples it attacks. */
  onMember?: (member: AutoMember, examples: number) => void;
}

/**
 * The ensemble's result: success is misclassification at `xAdv`; `gradientEvaluations` and
 * `queries` are per example, averaged over the batch (members run on subsets).
 */
export interface AutoResult extends AttackResult {
  /** Per example: the member that broke it, 'clean' if misclassified unattacked, or null (robust). */
  brokenBy: (AutoMember | 'clean' | null)[];
  /** Per member: examples attacked, examples broken. */
  members: { attack: AutoMember; attacked: number; broken: number }[];
  config: AutoConfig;
}

/** Validates a config once; the returned attack does not re-check it. */
export const createAuto = evasionAttack(
  (config: unknown) => parseWith('auto', autoConfigSchema, config),
  runAuto,
).create;

export async function autoAttack(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  config: AutoConfigInput,
  opts: AutoOptions = {},
): Promise<AutoResult> {
  return createAuto(config)(model, x, labels, opts);
}

async function runAuto(
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: AutoConfig,
  opts: AutoOptions,
): Promise<AutoResult> {
  checkBatch('auto', model, x, labels);
  const n = x.shape[0];
  const per = x.size / Math.max(n, 1);
  const y = Int32Array.from(await labels.data());
  const assembled = Float32Array.from(await x.data());
  const brokenBy: AutoResult['brokenBy'] = Array.from(await predict(model, x), (p, i) =>
    p === y[i] ? null : 'clean',
  );
  const rng = new Rng(c.seed);
  const members: AutoResult['members'] = [];
  let gradientEvaluations = 0;
  let queries = 0;

  const total = c.attacks.length;
  for (const [k, member] of c.attacks.entries()) {
    // Each member gets its own seed whether or not earlier members ran.
    const seed = rng.nextUint32();
    const idx = brokenBy.flatMap((b, i) => (b === null ? [i] : []));
    opts.onProgress?.(k, total);
    if (idx.length === 0) continue;
    opts.onMember?.(member, idx.length);
    const [xs, ys] = tf.tidy(() => {
      const at = tf.tensor1d(idx, 'int32');
      return [tf.gather(x, at), tf.gather(labels, at) as tf.Tensor1D];
    });
    let out: { xAdv: tf.Tensor; gradientEvaluations: number; queries: number };
    try {
      const onProgress = opts.onProgress
        ? (done: number, of: number) => opts.onProgress?.(k + Math.min(1, done / of), total)
        : undefined;
      out = await runMember(member, model, xs, ys, c, seed, { signal: opts.signal, onProgress });
    } finally {
      tf.dispose([xs, ys]);
    }
    const preds = await predict(model, out.xAdv);
    const adv = (await out.xAdv.data()) as Float32Array;
    out.xAdv.dispose();
    let broken = 0;
    idx.forEach((i, j) => {
      if (preds[j] === y[i]) return;
      assembled.set(adv.subarray(j * per, (j + 1) * per), i * per);
      brokenBy[i] = member;
      broken++;
    });
    members.push({ attack: member, attacked: idx.length, broken });
    gradientEvaluations += (out.gradientEvaluations * idx.length) / n;
    queries += (out.queries * idx.length) / n;
  }

  opts.onProgress?.(total, total);
  const xAdv = tf.tidy(() =>
    enforceThreatModel(tf.tensor(assembled, x.shape), x, c.eps, c.norm, model.bounds),
  );
  const final = await predict(model, xAdv);
  brokenBy.forEach((b, i) => {
    if (b !== null && b !== 'clean' && final[i] === y[i]) brokenBy[i] = null;
  });
  const [predictions, success, norms] = tf.tidy(() => {
    const p = tf.tensor1d(final, 'int32');
    return [p, tf.notEqual(p, labels) as tf.Tensor1D, perturbationNorms(xAdv, x, c.norm)];
  });
  return {
    xAdv,
    predictions,
    success,
    perturbationNorms: norms,
    brokenBy,
    gradientEvaluations,
    queries,
    members,
    seed: c.seed,
    config: c,
  };
}

async function runMember(
  member: AutoMember,
  model: Classifier,
  x: tf.Tensor,
  labels: tf.Tensor1D,
  c: AutoConfig,
  seed: number,
  memberOpts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void },
): Promise<{ xAdv: tf.Tensor; gradientEvaluations: number; queries: number }> {
  if (member === 'square') {
    const square = createSquare({ eps: c.eps, norm: c.norm, maxQueries: c.maxQueries, seed });
    const r = await square(queryClassifierFrom(model), x, labels, memberOpts);
    tf.dispose([r.predictions, r.success, r.perturbationNorms]);
    return { xAdv: r.xAdv, gradientEvaluations: 0, queries: r.queries };
  }
  const apgd = createApgd({
    eps: c.eps,
    norm: c.norm,
    steps: c.steps,
    loss: member === 'apgd-ce' ? 'ce' : 'dlr',
    targeted: member === 'apgd-t',
    numTargets: Math.min(c.numTargets, model.numClasses - 1),
    seed,
  });
  const r = await apgd(model, x, labels, memberOpts);
  tf.dispose([r.predictions, r.success, r.perturbationNorms]);
  return { xAdv: r.xAdv, gradientEvaluations: r.gradientEvaluations, queries: 0 };
}

async function predict(model: Classifier, x: tf.Tensor): Promise<Int32Array> {
  const p = tf.tidy(() => tf.argMax(model.logits(x), 1));
  const out = Int32Array.from(await p.data());
  p.dispose();
  return out;
}
