/**
 * Runs one attack over a data set, batch by batch, and measures it: clean and robust accuracy,
 * success rate among the examples first classified correctly, perturbation sizes in the attack's
 * norm, and cost. Values are read once per batch (a boundary), never inside an attack's steps.
 */
import * as tf from '@tensorflow/tfjs-core';
import { perturbationNorms } from '../attacks/evasion/projection.js';
import type { AttackEntry, AttackParams } from '../attacks/registry.js';
import { type Dataset, exampleSize } from '../data/index.js';
import { Rng } from '../engine/rng.js';
import type { Classifier } from '../models/classifier.js';

export interface AttackEvaluation {
  n: number;
  clean_accuracy: number;
  robust_accuracy: number;
  /** Among examples classified correctly before the attack: fraction the attack broke. */
  attack_success_rate: number;
  /** Over successful adversarial examples, in the attack's norm (NaN when none). */
  mean_perturbation: number;
  median_perturbation: number;
  max_perturbation: number;
  /** Example-gradients: batch gradient evaluations times batch size, summed. */
  gradient_evaluations: number;
  queries: number;
  seconds: number;
  perExample: {
    label: number;
    target?: number;
    clean: number;
    adversarial: number;
    norm: number;
    /** Ensembles: the member that broke the example, 'clean', or null (robust). */
    brokenBy?: string | null;
  }[];
  /** The first `keepExamples` clean and adversarial inputs, for galleries. */
  examples: { x: Float32Array; xAdv: Float32Array; shape: number[] };
}

export interface EvaluateAttackOptions {
  batchSize?: number;
  keepExamples?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export async function evaluateAttack(
  model: Classifier,
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  opts: EvaluateAttackOptions = {},
): Promise<AttackEvaluation> {
  const { batchSize = 128, keepExamples = 0 } = opts;
  const n = data.shape[0];
  const per = exampleSize(data);
  const k = model.numClasses;
  const rng = new Rng(params.seed);
  const started = performance.now();
  const perExample: AttackEvaluation['perExample'] = [];
  const keep = Math.min(keepExamples, n);
  const examples = {
    x: new Float32Array(keep * per),
    xAdv: new Float32Array(keep * per),
    shape: [keep, ...data.shape.slice(1)],
  };
  let gradientEvaluations = 0;
  let queries = 0;
  for (let start = 0; start < n; start += batchSize) {
    const end = Math.min(n, start + batchSize);
    const m = end - start;
    const labelsJs = data.labels.subarray(start, end);
    // Targets: a uniformly random class other than the true one, from the seeded generator.
    const targetsJs = params.targeted
      ? Int32Array.from(labelsJs, (y) => (y + 1 + rng.int(k - 1)) % k)
      : undefined;
    const x = tf.tensor(data.x.subarray(start * per, end * per), [m, ...data.shape.slice(1)]);
    const labels = tf.tensor1d(labelsJs, 'int32');
    const targetLabels = targetsJs ? tf.tensor1d(targetsJs, 'int32') : undefined;
    try {
      const batchParams = { ...params, seed: rng.nextUint32() };
      const out = await attack.run(model, x, labels, batchParams, {
        targetLabels,
        signal: opts.signal,
      });
      gradientEvaluations += out.gradientEvaluations * m;
      queries += out.queries * m;
      const [clean, adv, norms] = tf.tidy(() => [
        tf.argMax(model.logits(x), 1),
        tf.argMax(model.logits(out.xAdv), 1),
        perturbationNorms(out.xAdv, x, params.norm),
      ]);
      const [c, a, d] = await Promise.all([clean.data(), adv.data(), norms.data()]);
      if (start < keep) {
        const upto = Math.min(keep, end) - start;
        examples.x.set(data.x.subarray(start * per, (start + upto) * per), start * per);
        examples.xAdv.set((await out.xAdv.data()).subarray(0, upto * per), start * per);
      }
      tf.dispose([clean, adv, norms, out.xAdv]);
      for (let i = 0; i < m; i++) {
        perExample.push({
          label: labelsJs[i],
          ...(targetsJs ? { target: targetsJs[i] } : {}),
          clean: c[i],
          adversarial: a[i],
          norm: d[i],
          ...(out.brokenBy ? { brokenBy: out.brokenBy[i] } : {}),
        });
      }
    } finally {
      tf.dispose([x, labels, ...(targetLabels ? [targetLabels] : [])]);
    }
    opts.onProgress?.(end, n);
  }
  return {
    n,
    ...summarize(perExample, params.targeted),
    gradient_evaluations: gradientEvaluations,
    queries,
    seconds: (performance.now() - started) / 1000,
    perExample,
    examples,
  };
}

function summarize(rows: AttackEvaluation['perExample'], targeted: boolean) {
  const correct = rows.filter((r) => r.clean === r.label);
  const broken = correct.filter((r) =>
    targeted ? r.adversarial === r.target : r.adversarial !== r.label,
  );
  const robust = correct.filter((r) => r.adversarial === r.label).length;
  const norms = broken.map((r) => r.norm).sort((a, b) => a - b);
  const n = rows.length;
  return {
    clean_accuracy: correct.length / n,
    robust_accuracy: robust / n,
    attack_success_rate: correct.length === 0 ? Number.NaN : broken.length / correct.length,
    mean_perturbation:
      norms.length === 0 ? Number.NaN : norms.reduce((s, v) => s + v, 0) / norms.length,
    median_perturbation: norms.length === 0 ? Number.NaN : median(norms),
    max_perturbation: norms.length === 0 ? Number.NaN : norms[norms.length - 1],
  };
}

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
