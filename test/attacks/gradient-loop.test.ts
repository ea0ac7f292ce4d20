/**
 * The shared gradient loop (src/attacks/evasion/gradient-loop.ts): per-example worst case over
 * restarts, the abort signal, the final projection, no leaks, and PGD through it equal to a plain
 * reference loop written here, bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runGradientLoop, type StepRule } from '../../src/attacks/evasion/gradient-loop.js';
import { attackObjective } from '../../src/attacks/evasion/objective.js';
import { parsePgdConfig, pgd, pgdStep } from '../../src/attacks/evasion/pgd.js';
import {
  clipToBounds,
  enforceThreatModel,
  perturbationNorms,
  randomStart,
} from '../../src/attacks/evasion/projection.js';
import { disposeAttackResult } from '../../src/attacks/result.js';
import { Rng } from '../../src/engine/rng.js';
import { buildArchitecture, TfjsClassifier } from '../../src/models/index.js';
import { values } from './helpers.js';

const model = new TfjsClassifier(
  buildArchitecture('mlp', { inputShape: [4, 4, 1], numClasses: 3, seed: 2 }),
);
const x = tf.keep(tf.tensor(values(4 * 16, 5), [4, 4, 4, 1]));
const labels = tf.keep(tf.tensor1d([0, 1, 2, 0], 'int32'));
const settings = {
  steps: 2,
  eps: 0.3,
  norm: 'linf' as const,
  loss: 'ce' as const,
  targeted: false,
};

/** A rule whose restarts are fixed points: restart r stays at `points[r]`. */
function fixedPoints(points: tf.Tensor[]): StepRule<tf.Tensor> {
  return {
    start: (run) => tf.clone(points[run.index]),
    step: (p) => tf.clone(p),
    iterate: (p) => p,
    dispose: (p) => p.dispose(),
  };
}

function predict(v: tf.Tensor): number[] {
  const p = tf.tidy(() => tf.argMax(model.logits(v), 1));
  const out = Array.from(p.dataSync());
  p.dispose();
  return out;
}

function row(v: tf.Tensor, i: number): number[] {
  const r = tf.slice(v, [i], [1]);
  const out = Array.from(r.dataSync());
  r.dispose();
  return out;
}

describe('gradient loop', () => {
  it('keeps, per example, the restart that fools the model (else the higher objective)', async () => {
    const before = tf.memory().numTensors;
    // Restart 0: x itself; restart 1: x pushed to the far corner of the ball. The far point
    // fools the model on some examples only, so the result must mix the two restarts.
    const far = tf.tidy(() =>
      tf.clipByValue(tf.add(x, tf.mul(tf.sign(tf.sub(x, 0.5)), 0.3)), 0, 1),
    );
    const out = await runGradientLoop(model, x, labels, fixedPoints([x, far]), {
      ...settings,
      restarts: 2,
    });
    const [p0, p1] = [predict(x), predict(far)];
    const pOut = Array.from(out.predictions.dataSync());
    const y = labels.arraySync();
    const objective = (v: tf.Tensor) => {
      const o = tf.tidy(() => attackObjective(model.logits(v), labels, false, 'ce'));
      const values = Array.from(o.dataSync());
      o.dispose();
      return values;
    };
    const [o0, o1] = [objective(x), objective(far)];
    const winners: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [fooled0, fooled1] = [p0[i] !== y[i], p1[i] !== y[i]];
      // A success beats a failure; among equals the higher objective.
      const second = (fooled1 && !fooled0) || (fooled0 === fooled1 && o1[i] > o0[i]);
      winners.push(second ? 1 : 0);
      expect(row(out.xAdv, i)).toEqual(row(second ? far : x, i));
      expect(pOut[i]).toBe(second ? p1[i] : p0[i]);
      expect(Boolean(out.success.dataSync()[i])).toBe(fooled0 || fooled1);
    }
    // The case is built so that restart 2 wins on some examples only.
    expect(winners).toContain(0);
    expect(winners).toContain(1);
    expect(out.exampleRuns).toBe(8);
    tf.dispose([out.xAdv, out.predictions, out.success, out.perturbationNorms, far]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('with standingOnly, attacks only the examples the earlier runs left standing', async () => {
    const before = tf.memory().numTensors;
    const far = tf.tidy(() =>
      tf.clipByValue(tf.add(x, tf.mul(tf.sign(tf.sub(x, 0.5)), 0.3)), 0, 1),
    );
    const seen: number[] = [];
    const rule: StepRule<tf.Tensor> = {
      ...fixedPoints([]),
      // Run 0 starts far away; run 1 (standing rows only) starts at the clean rows.
      start: (run) => {
        seen.push(run.x.shape[0]);
        return run.index === 0 ? tf.clone(far) : tf.clone(run.x);
      },
    };
    const out = await runGradientLoop(model, x, labels, rule, {
      ...settings,
      restarts: 2,
      standingOnly: true,
    });
    const broken = predict(far).filter((p, i) => p !== labels.arraySync()[i]).length;
    expect(seen).toEqual(broken === 4 ? [4] : [4, 4 - broken]);
    expect(out.exampleRuns).toBe(4 + (4 - broken));
    tf.dispose([out.xAdv, out.predictions, out.success, out.perturbationNorms, far]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects with the abort reason and leaks nothing', async () => {
    const before = tf.memory().numTensors;
    const controller = new AbortController();
    const rule: StepRule<tf.Tensor> = {
      ...fixedPoints([x]),
      step: (p) => {
        controller.abort(new Error('stop here'));
        return tf.clone(p);
      },
    };
    await expect(
      runGradientLoop(model, x, labels, rule, {
        ...settings,
        restarts: 1,
        signal: controller.signal,
      }),
    ).rejects.toThrow('stop here');
    expect(tf.memory().numTensors).toBe(before);
  });

  for (const [norm, eps] of [
    ['linf', 0.1],
    ['l2', 0.5],
    ['l1', 2],
  ] as const) {
    it(`returns a point inside the ${norm} ball and the bounds, whatever the rule did`, async () => {
      const before = tf.memory().numTensors;
      const wild = tf.tidy(() => tf.add(x, 5));
      const out = await runGradientLoop(model, x, labels, fixedPoints([wild]), {
        ...settings,
        norm,
        eps,
        restarts: 1,
      });
      const norms = perturbationNorms(out.xAdv, x, norm);
      for (const d of norms.dataSync()) expect(d).toBeLessThanOrEqual(eps * (1 + 1e-5));
      expect(Array.from(out.perturbationNorms.dataSync())).toEqual(Array.from(norms.dataSync()));
      const [min, max] = [tf.min(out.xAdv), tf.max(out.xAdv)];
      expect(min.dataSync()[0]).toBeGreaterThanOrEqual(0);
      expect(max.dataSync()[0]).toBeLessThanOrEqual(1);
      tf.dispose([out.xAdv, out.predictions, out.success, out.perturbationNorms, wild, norms]);
      tf.dispose([min, max]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('PGD through the loop equals a plain reference loop, bit for bit', async () => {
    const config = { eps: 0.2, norm: 'l2' as const, steps: 4, seed: 9 };
    const r = await pgd(model, x, labels, config);
    const c = parsePgdConfig(config);
    const start = new Rng(c.seed).fork();
    let xAdv = tf.tidy(() => clipToBounds(randomStart(x, c.eps, c.norm, start), model.bounds));
    for (let k = 0; k < c.steps; k++) {
      const next = pgdStep(model, x, xAdv, labels, c);
      xAdv.dispose();
      xAdv = next;
    }
    const expected = tf.tidy(() => enforceThreatModel(xAdv, x, c.eps, c.norm, model.bounds));
    expect(Array.from(r.xAdv.dataSync())).toEqual(Array.from(expected.dataSync()));
    disposeAttackResult(r);
    tf.dispose([xAdv, expected]);
  });
});
