/**
 * Every loss an attack ascends, differentiated by tfjs, against central finite differences:
 * DLR and targeted DLR (APGD), the attack objective 'ce' (with its margin term) and 'margin',
 * and the C&W objective through the tanh change of variables. Smooth points only: logits with
 * distinct entries, away from the kinks of max and relu.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { toInput } from '../../src/attacks/evasion/carlini-wagner.js';
import { dlrLoss, dlrTargetedLoss } from '../../src/attacks/evasion/dlr.js';
import { attackObjective } from '../../src/attacks/evasion/objective.js';
import { margin } from '../../src/objectives/losses.js';
import { values } from './helpers.js';

/** Logits [3, 5] with well separated entries (no ties among the top 3 of any row). */
const Z = [
  [2.0, -1.0, 0.5, 1.2, -0.4],
  [-3.0, 4.0, 1.0, 0.1, 2.3],
  [0.3, 0.9, -2.0, 1.7, -0.8],
];
const Y = [0, 2, 1];
const T = [3, 1, 4];

/** Compares tf.grad of the scalar `f` at `x0` with central differences of step h. */
function checkGradient(f: (x: tf.Tensor) => tf.Scalar, x0: tf.Tensor, h = 1e-2, tol = 2e-3) {
  const analytic = tf.tidy(() => tf.grad(f)(x0).dataSync());
  const base = x0.dataSync();
  for (let i = 0; i < base.length; i++) {
    const at = (d: number) =>
      tf.tidy(() => {
        const v = Float32Array.from(base);
        v[i] += d;
        return f(tf.tensor(v, x0.shape)).dataSync()[0];
      });
    const numeric = (at(h) - at(-h)) / (2 * h);
    expect(Math.abs(analytic[i] - numeric), `coordinate ${i}`).toBeLessThan(
      tol * Math.max(1, Math.abs(numeric)),
    );
  }
}

describe('attack losses against finite differences', () => {
  const z = tf.tensor2d(Z);
  const y = tf.tensor1d(Y, 'int32');
  const t = tf.tensor1d(T, 'int32');

  it('DLR and targeted DLR', () => {
    checkGradient((v) => tf.sum(dlrLoss(v as tf.Tensor2D, y)), z);
    checkGradient((v) => tf.sum(dlrTargetedLoss(v as tf.Tensor2D, y, t)), z);
  });

  it("the attack objective: 'ce' (cross-entropy with the margin term) and 'margin'", () => {
    for (const loss of ['ce', 'margin'] as const) {
      for (const targeted of [false, true]) {
        checkGradient(
          (v) => tf.sum(attackObjective(v as tf.Tensor2D, targeted ? t : y, targeted, loss)),
          z,
        );
      }
    }
  });

  it("'ce' still has a gradient where softmax saturates in float32", () => {
    const saturated = tf.tensor2d([[200, 0, -5, 1, 2]]);
    const label = tf.tensor1d([0], 'int32');
    const ce = tf.grad((v) => tf.sum(attackObjective(v as tf.Tensor2D, label, false, 'ce')))(
      saturated,
    );
    const g = ce.dataSync();
    // The margin term pushes the runner-up (index 4) up and the label down.
    expect(g[0]).toBeLessThan(0);
    expect(g[4]).toBeGreaterThan(0);
    tf.dispose([saturated, label, ce]);
  });

  it('the C&W objective in tanh space', () => {
    // A fixed linear "model" on 6 inputs, bounds [0, 1]; loss = ‖x' − x‖² + c·relu(margin + κ), κ = 1.
    const w = tf.tensor2d(values(6 * 3, 4, -1, 1), [6, 3]);
    const x = tf.tensor2d([values(6, 7, 0.2, 0.8)]);
    const label = tf.tensor1d([1], 'int32');
    const objective = (wv: tf.Tensor) => {
      const xNew = toInput(wv, [0, 1]);
      const l2 = tf.sum(tf.square(tf.sub(xNew, x)));
      const m = margin(tf.matMul(xNew as tf.Tensor2D, w), label);
      return tf.add(l2, tf.mul(0.7, tf.sum(tf.relu(tf.add(m, 1.0))))) as tf.Scalar;
    };
    const w0 = tf.tensor2d([values(6, 8, -0.5, 0.5)]);
    // The hinge is active at w0, so the margin's gradient is part of what is checked.
    const hinge = tf.tidy(
      () =>
        tf.add(margin(tf.matMul(toInput(w0, [0, 1]) as tf.Tensor2D, w), label), 1.0).dataSync()[0],
    );
    expect(hinge).toBeGreaterThan(0.05);
    checkGradient(objective, w0, 1e-2, 3e-3);
    w0.dispose();
    tf.dispose([w, x, label]);
  });
});
