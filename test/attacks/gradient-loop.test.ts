/**
 * The shared gradient loop (src/attacks/evasion/gradient-loop.ts): per-example worst case over
 * restarts, the abort signal, the final projection, no leaks, and PGD through it equal to a plain
 * reference loop written here, bit for bit.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runGradientLoop, type StepRule } from '../../src/attacks/evasion/gradient-loop.js';
import { parsePgdConfig, pgd, pgdStep } from '../../src/attacks/evasion/pgd.js';
import {
  clipToBounds,
  enforceThreatModel,
  perturbationNorms,
  randomStart,
} from '../../src/attacks/evasion/projection.js';
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
    start: (r) => tf.clone(points[r]),
    step: (p) => tf.clone(p),
    iterate: (p) => p,
    dispose: (p) => p.dispose(),
  };
}

describe('gradient loop', () => {
  it('keeps, per example, the restart that fools the model (else the higher objective)', async () => {
    const before = tf.memory().numTensors;
    // Restart 0: x itself; restart 1: x pushed far along a random direction (clipped later).
    const far = tf.tidy(() =>
      tf.clipByValue(tf.add(x, tf.mul(tf.sign(tf.sub(x, 0.5)), 0.3)), 0, 1),
    );
    const out = await runGradientLoop(model, x, labels, fixedPoints([x, far]), {
      ...settings,
      restarts: 2,
    });
    const predict = (v: tf.Tensor) => {
      const p = tf.tidy(() => tf.argMax(model.logits(v), 1));
      const out = p.arraySync() as number[];
      p.dispose();
      return out;
    };
    const [p0, p1, pOut] = [predict(x), predict(far), predict(out)];
    const y = labels.arraySync();
    for (let i = 0; i < 4; i++) {
      const fooled0 = p0[i] !== y[i];
      const fooled1 = p1[i] !== y[i];
      const fooledOut = pOut[i] !== y[i];
      expect(fooledOut).toBe(fooled0 || fooled1);
      const row = (v: tf.Tensor) => {
        const r = tf.slice(v, [i], [1]);
        const out = Array.from(r.dataSync());
        r.dispose();
        return out;
      };
      if (fooled1 && !fooled0) expect(row(out)).toEqual(row(far));
      if (fooled0 && !fooled1) expect(row(out)).toEqual(row(x));
    }
    tf.dispose([out, far]);
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
      const wild = tf.tidy(() => tf.add(x, 5));
      const out = await runGradientLoop(model, x, labels, fixedPoints([wild]), {
        ...settings,
        norm,
        eps,
        restarts: 1,
      });
      const norms = perturbationNorms(out, x, norm);
      for (const d of norms.dataSync()) expect(d).toBeLessThanOrEqual(eps * (1 + 1e-5));
      const max = tf.max(out);
      expect(max.dataSync()[0]).toBeLessThanOrEqual(1);
      tf.dispose([out, wild, norms, max]);
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
    tf.dispose([r.xAdv, xAdv, expected]);
  });
});
