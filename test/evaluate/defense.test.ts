/**
 * evaluateDefense: its counts against predictions made here by hand, and the same numbers across
 * a worker pool as in this thread (the pool runs dist/: `npm run build` first).
 */
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findAttack } from '../../src/attacks/registry.js';
import { type Dataset, loadDataset, takeFirst } from '../../src/data/index.js';
import type { Preprocessor } from '../../src/defenses/preprocess/preprocessor.js';
import { buildPreprocessors } from '../../src/defenses/preprocess/spec.js';
import { WorkerPool } from '../../src/engine/pool.js';
import { Rng } from '../../src/engine/rng.js';
import {
  defenseSetup,
  evaluateDefense,
  evaluateDefensePooled,
} from '../../src/evaluate/defense.js';
import type { Classifier } from '../../src/models/classifier.js';
import { loadClassifier, type TfjsClassifier } from '../../src/models/index.js';

const MLP = 'models/fmnist-mlp';
const pgd = findAttack('pgd')!;
const params = { norm: 'linf' as const, eps: 0.1, steps: 4, targeted: false, seed: 9 };

let mlp: TfjsClassifier;
let data: Dataset;
beforeAll(async () => {
  mlp = await loadClassifier(MLP);
  data = takeFirst(loadDataset('fashion-mnist-subset', 'test'), 16);
});
afterAll(() => mlp.dispose());

async function predict(model: Classifier, x: tf.Tensor): Promise<number[]> {
  const p = tf.tidy(() => tf.argMax(model.logits(x), 1));
  const out = Array.from(await p.data());
  p.dispose();
  return out;
}

describe('evaluateDefense', () => {
  it('counts clean, per-attacker and worst-case robust examples as predicted by hand', async () => {
    const chain = await buildPreprocessors('squeeze-bits:bits=3');
    const kind = { adaptive: 'bpda' as const };
    const before = tf.memory().numTensors;
    const r = await evaluateDefense(
      (seed) => defenseSetup(mlp, chain, kind, seed),
      data,
      pgd,
      params,
      { batchSize: 16 },
    );
    expect(tf.memory().numTensors).toBe(before);
    // One batch: its seed is the first draw from params.seed.
    const seed = new Rng(params.seed).nextUint32();
    const { defended, attackers } = defenseSetup(mlp, chain, kind, seed);
    const x = tf.tensor(data.x, data.shape);
    const labels = tf.tensor1d(data.labels, 'int32');
    const y = Array.from(data.labels);
    const base = await predict(mlp, x);
    const clean = await predict(defended, x);
    const ok: Record<string, boolean[]> = {};
    for (const name of ['non-adaptive', 'bpda']) {
      const out = await pgd.run(attackers[name], x, labels, { ...params, seed }, {});
      const adv = await predict(defended, out.xAdv);
      out.xAdv.dispose();
      ok[name] = y.map((label, i) => clean[i] === label && adv[i] === label);
    }
    tf.dispose([x, labels]);
    const frac = (v: boolean[]) => v.filter(Boolean).length / y.length;
    expect(r.cleanAccuracyUndefended).toBe(frac(base.map((p, i) => p === y[i])));
    expect(r.cleanAccuracyDefended).toBe(frac(clean.map((p, i) => p === y[i])));
    expect(r.robustAccuracy['non-adaptive']).toBe(frac(ok['non-adaptive']));
    expect(r.robustAccuracy.bpda).toBe(frac(ok.bpda));
    expect(r.robustAccuracyWorstCase).toBe(
      frac(y.map((_, i) => ok['non-adaptive'][i] && ok.bpda[i])),
    );
    // Bit depth masks the gradient; BPDA sees through it.
    expect(r.robustAccuracy.bpda).toBeLessThan(r.robustAccuracy['non-adaptive']);
    expect(r.gradientEvaluations.bpda).toBe(4 * 16);
  });

  it('gives the same numbers across a worker pool, randomised chain and EOT included', async () => {
    const preprocess = 'noise:kind=gaussian,sigma=0.1,squeeze-bits:bits=4';
    const chain: Preprocessor[] = await buildPreprocessors(preprocess);
    const pool = new WorkerPool({ workers: 2, backend: tf.getBackend() });
    try {
      for (const kind of [
        { adaptive: 'bpda' as const },
        { adaptive: 'eot' as const, eotSamples: 2 },
      ]) {
        const opts = { batchSize: 5 };
        const setup = (seed: number) => defenseSetup(mlp, chain, kind, seed);
        const local = await evaluateDefense(setup, data, pgd, params, opts);
        const target = { modelDir: MLP, preprocess, ...kind };
        const seen: number[] = [];
        const pooled = await evaluateDefensePooled(pool, target, data, pgd, params, {
          ...opts,
          onProgress: (done) => seen.push(done),
        });
        expect({ ...pooled, seconds: 0 }).toEqual({ ...local, seconds: 0 });
        expect(Object.keys(pooled.robustAccuracy)).toEqual(['non-adaptive', kind.adaptive]);
        expect(seen[seen.length - 1]).toBe(16);
      }
    } finally {
      await pool.close();
    }
  });
});
