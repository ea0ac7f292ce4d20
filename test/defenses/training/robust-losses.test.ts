/**
 * The composite losses of robust training — TRADES, MART, the input-gradient penalty (double
 * backpropagation) and the Jacobian penalty — differentiated w.r.t. the weights against central
 * finite differences on a tiny fixed-weight model (x_adv held fixed, as the methods do), on cpu
 * and wasm; closed forms on a linear model computed independently in float64 JS; the layers
 * tfjs cannot differentiate twice are refused by name.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import {
  createInputGradientRegularizer,
  createJacobianRegularizer,
  inputGradientLoss,
  jacobianPenalty,
  martLoss,
  registerSecondOrderGradients,
  tradesLoss,
} from '../../../src/defenses/index.js';
import { Rng } from '../../../src/engine/rng.js';
import { ParryError } from '../../../src/errors.js';
import { buildArchitecture } from '../../../src/models/index.js';
import { values } from '../../attacks/helpers.js';

/** dense(4 → 3, relu) → dense(3), or a single dense(4 → 3) when `linear`; fixed weights. */
function tinyModel(linear = false): tfl.LayersModel {
  const layers = linear
    ? [tfl.layers.dense({ inputShape: [4], units: 3 })]
    : [
        tfl.layers.dense({ inputShape: [4], units: 3, activation: 'relu' }),
        tfl.layers.dense({ units: 3 }),
      ];
  const model = tfl.sequential({ layers });
  let seed = 70;
  for (const w of model.weights) {
    const n = w.shape.reduce((a, b) => (a as number) * (b as number), 1) as number;
    w.write(tf.tensor(values(n, ++seed, -1, 1), w.shape as number[]));
  }
  return model;
}

/** Largest relative difference between tf.variableGrads and central differences of `f`. */
function worstGradientError(model: tfl.LayersModel, f: () => tf.Scalar): number {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(f, vars);
  const h = 1e-3;
  let worst = 0;
  for (const v of vars) {
    // A missing gradient is a zero gradient (tfjs omits variables it found no path to).
    const analytic = grads[v.name]?.dataSync() ?? new Float32Array(v.size);
    const base = v.dataSync().slice();
    for (let i = 0; i < base.length; i++) {
      const shifted = (d: number) => {
        const w = base.slice();
        w[i] += d;
        v.assign(tf.tensor(w, v.shape));
        return tf.tidy(() => f().dataSync()[0]);
      };
      const numeric = (shifted(h) - shifted(-h)) / (2 * h);
      v.assign(tf.tensor(base, v.shape));
      worst = Math.max(worst, Math.abs(numeric - analytic[i]) / (1 + Math.abs(numeric)));
    }
  }
  tf.dispose([value, ...Object.values(grads)]);
  return worst;
}

const x = () => tf.tensor2d(values(12, 80, 0.1, 0.9), [3, 4]);
const xAdv = () => tf.tensor2d(values(12, 81, 0.05, 0.95), [3, 4]);
const labels = () => tf.tensor1d([0, 1, 2], 'int32');

describe.each(['cpu', 'wasm'])('robust-training losses on %s', (backend) => {
  const onBackend = async (fn: () => void) => {
    const previous = tf.getBackend();
    await tf.setBackend(backend);
    registerSecondOrderGradients();
    try {
      fn();
    } finally {
      await tf.setBackend(previous);
    }
  };

  const cases: [
    string,
    (m: tfl.LayersModel, a: tf.Tensor, b: tf.Tensor, y: tf.Tensor1D) => tf.Tensor1D,
  ][] = [
    [
      'TRADES',
      (m, a, b, y) => tradesLoss(m.apply(a) as tf.Tensor2D, m.apply(b) as tf.Tensor2D, y, 6),
    ],
    ['MART', (m, a, b, y) => martLoss(m.apply(a) as tf.Tensor2D, m.apply(b) as tf.Tensor2D, y, 6)],
    ['input-gradient penalty', (m, a, _b, y) => inputGradientLoss(m, a, y, 2).loss],
    ['Jacobian penalty', (m, a) => jacobianPenalty(m, a, 3, new Rng(5))],
  ];
  it.each(cases)('%s: weight gradient matches central finite differences', async (_name, loss) => {
    await onBackend(() => {
      const model = tinyModel();
      const [a, b, y] = [x(), xAdv(), labels()];
      const worst = worstGradientError(model, () => tf.mean(loss(model, a, b, y)) as tf.Scalar);
      expect(worst).toBeLessThan(3e-3);
      tf.dispose([a, b, y]);
      model.dispose();
    });
  });
});

describe('closed forms on a linear model (logits = xW + b)', () => {
  const model = tinyModel(true);
  const w = model.getWeights()[0].arraySync() as number[][]; // [d=4][k=3]
  const bias = model.getWeights()[1].arraySync() as number[];
  const xs = values(12, 80, 0.1, 0.9);
  const ys = [0, 1, 2];

  it('the double-backprop penalty is ‖W(softmax − onehot)‖² (float64 reference)', () => {
    const expected = ys.map((y, i) => {
      const z = [0, 1, 2].map(
        (j) => bias[j] + [0, 1, 2, 3].reduce((s, d) => s + xs[i * 4 + d] * w[d][j], 0),
      );
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((s, v) => s + v, 0);
      const r = e.map((v, j) => v / sum - (j === y ? 1 : 0));
      const ce = Math.log(sum) + m - z[y];
      const g = [0, 1, 2, 3].map((d) => r.reduce((s, rj, j) => s + w[d][j] * rj, 0));
      return ce + 0.7 * g.reduce((s, v) => s + v * v, 0);
    });
    const [a, y] = [x(), labels()];
    const { loss, logits } = inputGradientLoss(model, a, y, 0.7);
    const got = Array.from(loss.dataSync());
    for (let i = 0; i < 3; i++) expect(got[i]).toBeCloseTo(expected[i], 4);
    tf.dispose([a, y, loss, logits]);
  });

  it('the Jacobian estimate with many projections approaches ‖W‖_F² (unbiased)', () => {
    const frobenius = w.flat().reduce((s, v) => s + v * v, 0);
    const a = tf.tensor2d(values(4 * 4, 90), [4, 4]);
    const est = jacobianPenalty(model, a, 2000, new Rng(11));
    const got = Array.from(est.dataSync());
    for (const g of got) expect(Math.abs(g - frobenius) / frobenius).toBeLessThan(0.06);
    // One projection is a noisy but unbiased sample: the mean over examples of many single draws.
    const single = tf.tidy(() => {
      const big = tf.tensor2d(values(4000 * 4, 91), [4000, 4]);
      return tf.mean(jacobianPenalty(model, big, 1, new Rng(12))).dataSync()[0];
    });
    expect(Math.abs(single - frobenius) / frobenius).toBeLessThan(0.06);
    tf.dispose([a, est]);
  });
});

describe('second derivatives per layer type', () => {
  it('refuses pooling layers by name, with UNSUPPORTED', () => {
    const model = buildArchitecture('cnn-small', { inputShape: [8, 8, 1], numClasses: 3 });
    const a = tf.zeros([2, 8, 8, 1]);
    const y = tf.tensor1d([0, 1], 'int32');
    for (const reg of [
      createInputGradientRegularizer({ lambda: 1 }),
      createJacobianRegularizer({ lambda: 1 }),
    ]) {
      let err: unknown;
      try {
        reg.lossFn(model, a, y, { step: 0, totalSteps: 1 });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ParryError);
      expect((err as ParryError).code).toBe('UNSUPPORTED');
      expect((err as ParryError).message).toMatch(/'pool' \(MaxPooling2D\)/);
    }
    tf.dispose([a, y]);
    model.dispose();
  });

  it.each(['mlp', 'cnn-tiny'])(
    '%s: the penalty has a nonzero gradient for every weight',
    (arch) => {
      const model = buildArchitecture(arch, {
        numClasses: 3,
        seed: 1,
        dropout: 0.2,
      });
      const a = tf.tensor4d(values(4 * 784, 93), [4, 28, 28, 1]);
      const y = tf.tensor1d([0, 1, 2, 0], 'int32');
      const reg = createInputGradientRegularizer({ lambda: 1 });
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(
        () => tf.mean(reg.lossFn(model, a, y, { step: 0, totalSteps: 1 }).loss) as tf.Scalar,
        vars,
      );
      expect(Object.keys(grads).length).toBe(vars.length);
      for (const g of Object.values(grads))
        expect(Number.isFinite(tf.sum(g).dataSync()[0])).toBe(true);
      tf.dispose([a, y, value, ...Object.values(grads)]);
      model.dispose();
    },
  );
});
