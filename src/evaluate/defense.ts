/**
 * Evaluates a preprocessing defence honestly: clean accuracy without and with it (its cost), and
 * robust accuracy of the defended model under a non-adaptive attack (gradients as tfjs gives them
 * through the defence) and under adaptive ones (BPDA, EOT), side by side on the same examples.
 * Adversarial examples are always judged by the defended model itself. An example counts as
 * robust when the defended model classifies it correctly both clean and attacked.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { AttackEntry, AttackParams } from '../attacks/registry.js';
import { type Dataset, exampleSize } from '../data/index.js';
import type { DefendedClassifier } from '../defenses/preprocess/defended-classifier.js';
import { Rng } from '../engine/rng.js';
import type { Classifier } from '../models/classifier.js';

export interface DefenseEvaluation {
  n: number;
  clean_accuracy_undefended: number;
  clean_accuracy_defended: number;
  /** Robust accuracy of the defended model per attacker (e.g. 'non-adaptive', 'bpda'). */
  robust_accuracy: Record<string, number>;
  /** Robust under every attacker at once (per-example worst case). */
  robust_accuracy_worst_case: number;
  gradient_evaluations: Record<string, number>;
  seconds: number;
}

/**
 * `attackers` maps a name to the classifier the attack differentiates (the defended model itself,
 * a BpdaClassifier, an EotClassifier). Batch seeds come from `params.seed` in batch order.
 */
export async function evaluateDefense(
  defended: DefendedClassifier,
  attackers: Record<string, Classifier>,
  data: Dataset,
  attack: AttackEntry,
  params: AttackParams,
  opts: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<DefenseEvaluation> {
  const started = performance.now();
  const { batchSize = 128 } = opts;
  const n = data.shape[0];
  const per = exampleSize(data);
  const rng = new Rng(params.seed);
  const names = Object.keys(attackers);
  const robust: Record<string, number> = Object.fromEntries(names.map((k) => [k, 0]));
  const grads: Record<string, number> = Object.fromEntries(names.map((k) => [k, 0]));
  let cleanBase = 0;
  let cleanDefended = 0;
  let worst = 0;
  for (let start = 0; start < n; start += batchSize) {
    const m = Math.min(batchSize, n - start);
    const x = tf.tensor(data.x.subarray(start * per, (start + m) * per), [
      m,
      ...data.shape.slice(1),
    ]);
    const y = data.labels.subarray(start, start + m);
    const labels = tf.tensor1d(y, 'int32');
    const seed = rng.nextUint32();
    try {
      const predict = async (model: Classifier, input: tf.Tensor) => {
        const p = tf.tidy(() => tf.argMax(model.logits(input), 1));
        const v = await p.data();
        p.dispose();
        return v;
      };
      const base = await predict(defended.base, x);
      const clean = await predict(defended, x);
      const alive = Array.from(clean, (p, i) => p === y[i]);
      for (let i = 0; i < m; i++) {
        if (base[i] === y[i]) cleanBase++;
        if (alive[i]) cleanDefended++;
      }
      const survives = [...alive];
      for (const name of names) {
        const out = await attack.run(attackers[name], x, labels, { ...params, seed }, {});
        const adv = await predict(defended, out.xAdv);
        out.xAdv.dispose();
        grads[name] += out.gradientEvaluations * m;
        for (let i = 0; i < m; i++) {
          const ok = alive[i] && adv[i] === y[i];
          if (ok) robust[name]++;
          survives[i] = survives[i] && ok;
        }
      }
      worst += survives.filter(Boolean).length;
    } finally {
      tf.dispose([x, labels]);
    }
    opts.onProgress?.(start + m, n);
  }
  return {
    n,
    clean_accuracy_undefended: cleanBase / n,
    clean_accuracy_defended: cleanDefended / n,
    robust_accuracy: Object.fromEntries(names.map((k) => [k, robust[k] / n])),
    robust_accuracy_worst_case: worst / n,
    gradient_evaluations: grads,
    seconds: (performance.now() - started) / 1000,
  };
}
